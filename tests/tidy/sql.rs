//! What counts as SQL statement text inside a string literal, for the
//! "SQL lives in the stores" rule (invariant 10).
//!
//! A literal holds SQL when it contains the opening words of a statement,
//! in upper case, the way this code base writes SQL (prose in messages is
//! not upper case, and PEM's `-----BEGIN` is not `BEGIN TRANSACTION`):
//! `SELECT `, `INSERT INTO`/`INSERT OR`, `REPLACE INTO`, `UPDATE x SET`,
//! `DELETE FROM`, `CREATE`/`DROP`/`ALTER` of a schema object, `TRUNCATE`,
//! `PRAGMA x`, `WITH x AS (`/`WITH RECURSIVE`, transaction control
//! (`BEGIN IMMEDIATE`, a literal that is just `COMMIT`, `SAVEPOINT x`, …),
//! `VACUUM`, `ANALYZE`, `EXPLAIN`, `ATTACH`/`DETACH DATABASE`,
//! `LISTEN`/`NOTIFY`, `COPY x FROM`, `SET LOCAL`/`SET x = …`; and the
//! clauses a statement assembled from pieces is made of (`WHERE x`,
//! `ORDER BY`, `GROUP BY`, `JOIN x`, `VALUES (`, `ON CONFLICT`,
//! `RETURNING x`, `LIMIT ?`/`$`/a number, a condition's `AND (`/`OR x =`
//! or a bare `" AND "` joiner, `= ANY(`), PostGIS calls (`ST_x(`) and
//! PostgreSQL casts (`::geography`). Words are
//! whole words (`SELECTED` is not `SELECT`), and escapes such as `\n`
//! count as the white space they stand for.

use super::lex::{self, Kind};

const OBJECTS: &[&str] = &[
    "TABLE",
    "INDEX",
    "VIEW",
    "TRIGGER",
    "DATABASE",
    "EXTENSION",
    "SCHEMA",
    "FUNCTION",
    "PROCEDURE",
    "SEQUENCE",
    "TYPE",
    "ROLE",
    "USER",
    "DOMAIN",
    "POLICY",
    "AGGREGATE",
];

const CREATE_MODIFIERS: &[&str] = &[
    "OR",
    "REPLACE",
    "TEMP",
    "TEMPORARY",
    "UNIQUE",
    "VIRTUAL",
    "UNLOGGED",
    "MATERIALIZED",
];

/// A word or a punctuation character of a literal, with its byte offset
/// in the literal's source and whether white space follows it.
struct Word<'a> {
    text: &'a str,
    at: usize,
    space_after: bool,
}

fn words(lit: &str) -> Vec<Word<'_>> {
    let b = lit.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let is_space = |i: usize| {
        b.get(i).is_some_and(|c| c.is_ascii_whitespace())
            || (b.get(i) == Some(&b'\\')
                && b.get(i + 1)
                    .is_some_and(|c| matches!(c, b'n' | b't' | b'r' | b'\n')))
    };
    while i < b.len() {
        if is_space(i) {
            i += if b[i] == b'\\' { 2 } else { 1 };
            continue;
        }
        let start = i;
        if b[i].is_ascii_alphanumeric() || b[i] == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
        } else if lit[i..].starts_with("::") {
            i += 2;
        } else {
            // One character, whole (the literal may hold non-ASCII text).
            i += lit[i..].chars().next().map_or(1, char::len_utf8);
        }
        out.push(Word {
            text: &lit[start..i],
            at: start,
            space_after: is_space(i),
        });
    }
    out
}

/// PostgreSQL types a cast (`::type`) names: those no Rust path in a
/// message would end in (`::text` and `::json` might: `serde_json::json`).
const SQL_TYPES: &[&str] = &[
    "geography",
    "geometry",
    "float8",
    "float4",
    "int8",
    "int4",
    "int2",
    "bigint",
    "smallint",
    "bytea",
    "jsonb",
    "timestamptz",
    "regclass",
];

/// `column <comparison>` at `i` (`kind = ?2`, `e.seq >= $1`, `x IS NULL`).
fn comparison(w: &[Word], i: usize) -> bool {
    let mut j = i;
    if !ident(w.get(j)) {
        return false;
    }
    j += 1;
    while w.get(j).is_some_and(|x| x.text == ".") && ident(w.get(j + 1)) {
        j += 2;
    }
    w.get(j).is_some_and(|x| {
        matches!(
            x.text,
            "=" | "<" | ">" | "!" | "IS" | "IN" | "LIKE" | "BETWEEN" | "NOT" | "&"
        )
    })
}

fn ident(w: Option<&Word>) -> bool {
    w.is_some_and(|w| w.text.as_bytes()[0].is_ascii_alphabetic() || w.text.starts_with('_'))
}

/// Every SQL statement opening in `lit` (a string literal's source), as
/// `(byte offset, the words that make it SQL)`.
pub fn statements(lit: &str) -> Vec<(usize, String)> {
    let w = words(lit);
    let is = |i: usize, s: &str| w.get(i).is_some_and(|w| w.text == s);
    let any = |i: usize, set: &[&str]| w.get(i).is_some_and(|w| set.contains(&w.text));
    let mut out = Vec::new();
    // A literal that is one transaction keyword and nothing else.
    let whole = lit.trim().trim_end_matches(';').trim();
    if matches!(
        whole,
        "BEGIN" | "COMMIT" | "ROLLBACK" | "VACUUM" | "ANALYZE" | "END TRANSACTION"
    ) {
        out.push((lit.find(whole).unwrap_or(0), whole.to_string()));
        return out;
    }
    for i in 0..w.len() {
        let found: Option<String> = match w[i].text {
            "SELECT" if w[i].space_after => Some("SELECT".into()),
            "INSERT" if any(i + 1, &["INTO", "OR"]) => Some(format!("INSERT {}", w[i + 1].text)),
            "REPLACE" if is(i + 1, "INTO") => Some("REPLACE INTO".into()),
            "UPDATE" if ident(w.get(i + 1)) && (i + 2..i + 6).any(|j| is(j, "SET")) => {
                Some("UPDATE … SET".into())
            }
            "DELETE" if is(i + 1, "FROM") => Some("DELETE FROM".into()),
            "CREATE" => {
                let mut j = i + 1;
                while any(j, CREATE_MODIFIERS) {
                    j += 1;
                }
                any(j, OBJECTS).then(|| format!("CREATE {}", w[j].text))
            }
            "DROP" | "ALTER" if any(i + 1, OBJECTS) => {
                Some(format!("{} {}", w[i].text, w[i + 1].text))
            }
            "TRUNCATE" if ident(w.get(i + 1)) => Some("TRUNCATE".into()),
            "PRAGMA" if ident(w.get(i + 1)) => Some("PRAGMA".into()),
            "WITH" if is(i + 1, "RECURSIVE") => Some("WITH RECURSIVE".into()),
            "WITH" if ident(w.get(i + 1)) => {
                // `WITH name [(columns)] AS [NOT] [MATERIALIZED] (`
                let mut j = i + 2;
                if is(j, "(") {
                    while j < w.len() && !is(j, ")") {
                        j += 1;
                    }
                    j += 1;
                }
                let mut sql = is(j, "AS");
                j += 1;
                while any(j, &["NOT", "MATERIALIZED"]) {
                    j += 1;
                }
                sql &= is(j, "(");
                sql.then(|| "WITH … AS (".into())
            }
            "BEGIN"
                if any(
                    i + 1,
                    &[
                        "IMMEDIATE",
                        "DEFERRED",
                        "EXCLUSIVE",
                        "TRANSACTION",
                        "WORK",
                        "ISOLATION",
                    ],
                ) =>
            {
                Some(format!("BEGIN {}", w[i + 1].text))
            }
            "START" if is(i + 1, "TRANSACTION") => Some("START TRANSACTION".into()),
            "SAVEPOINT" if ident(w.get(i + 1)) => Some("SAVEPOINT".into()),
            "RELEASE" if is(i + 1, "SAVEPOINT") => Some("RELEASE SAVEPOINT".into()),
            "ROLLBACK" if is(i + 1, "TO") => Some("ROLLBACK TO".into()),
            "VACUUM" | "ANALYZE" | "REINDEX" if ident(w.get(i + 1)) || is(i + 1, ";") => {
                Some(w[i].text.into())
            }
            "EXPLAIN" if any(i + 1, &["QUERY", "ANALYZE", "SELECT", "("]) => Some("EXPLAIN".into()),
            "ATTACH" | "DETACH" if is(i + 1, "DATABASE") => Some(format!("{} DATABASE", w[i].text)),
            "LISTEN" | "NOTIFY" | "UNLISTEN" if ident(w.get(i + 1)) => Some(w[i].text.into()),
            "COPY" if ident(w.get(i + 1)) && (any(i + 2, &["(", "FROM", "TO"])) => {
                Some("COPY".into())
            }
            "SET" if any(i + 1, &["LOCAL", "SESSION"]) => Some(format!("SET {}", w[i + 1].text)),
            "SET" if i == 0 && ident(w.get(1)) && (is(2, "=") || is(2, "TO")) => Some("SET".into()),
            // Clauses: a statement assembled from pieces is SQL text too.
            "WHERE" if ident(w.get(i + 1)) || any(i + 1, &["{", "("]) => Some("WHERE".into()),
            "RETURNING" if ident(w.get(i + 1)) => Some("RETURNING".into()),
            // Conditions joined into a WHERE clause elsewhere.
            "AND" | "OR" if whole == w[i].text || is(i + 1, "(") || comparison(&w, i + 1) => {
                Some(w[i].text.into())
            }
            "ANY" if i > 0 && is(i - 1, "=") && is(i + 1, "(") => Some("= ANY(".into()),
            // PostGIS calls and PostgreSQL casts.
            f if f.starts_with("ST_") && is(i + 1, "(") => Some("ST_…(".into()),
            ty if i > 0 && is(i - 1, "::") && SQL_TYPES.contains(&ty) && !is(i + 1, "::") => {
                Some(format!("::{ty}"))
            }
            "ORDER" | "GROUP" | "PARTITION" if is(i + 1, "BY") => Some(format!("{} BY", w[i].text)),
            "JOIN" if ident(w.get(i + 1)) => Some("JOIN".into()),
            "ON" if is(i + 1, "CONFLICT") => Some("ON CONFLICT".into()),
            "VALUES" if is(i + 1, "(") => Some("VALUES (".into()),
            "LIMIT" | "OFFSET"
                if any(i + 1, &["?", "$"])
                    || w.get(i + 1)
                        .is_some_and(|w| w.text.as_bytes()[0].is_ascii_digit()) =>
            {
                Some(w[i].text.into())
            }
            _ => None,
        };
        if let Some(words) = found {
            out.push((w[i].at, words));
        }
    }
    out
}

/// The SQL text in a Rust source file's code, as `(line, what and where)`,
/// one per string literal (at its first SQL word), leaving out the
/// statements in `allowed` and what only tests compile.
pub fn in_source(src: &str, allowed: &[&str]) -> Vec<(usize, String)> {
    let (code, _) = lex::code(&lex::lex(src));
    let mut out = Vec::new();
    for (k, (t, test)) in code.iter().enumerate() {
        if t.kind != Kind::Str || *test {
            continue;
        }
        // SQL kept in a file of its own is still SQL text.
        let included = k >= 3
            && code[k - 3].0.ident("include_str")
            && code[k - 2].0.punct("!")
            && code[k - 1].0.punct("(");
        if included && t.text.ends_with(".sql") {
            out.push((t.line, format!("SQL (include_str!) \"{}\"", t.text)));
            continue;
        }
        let found: Vec<(usize, String)> = statements(&t.text)
            .into_iter()
            .filter(|(_, words)| !allowed.contains(&words.as_str()))
            .collect();
        let Some((at, _)) = found.first() else {
            continue;
        };
        let line = t.line + t.text[..*at].matches('\n').count();
        let text = t.text[*at..].lines().next().unwrap_or("").trim();
        let mut words: Vec<&str> = Vec::new();
        for (_, w) in &found {
            if !words.contains(&w.as_str()) {
                words.push(w);
            }
        }
        out.push((line, format!("SQL ({}) \"{text}\"", words.join(", "))));
    }
    out
}

#[test]
fn sql_is_found_in_code_not_in_comments_or_tests() {
    let src = r##"//! SELECT * FROM prose WHERE nothing = 1
/// Runs `DELETE FROM outbox`.
fn a(c: &Connection) {
    // c.execute("DELETE FROM outbox") was here
    /* "UPDATE t SET x = 1" */
    c.execute(
        "UPDATE events
         SET status = ?1", // not this line: the UPDATE's
    );
    let q = r#"
        SELECT "quoted" FROM t"#;
    let m = "a "SELECT" is fine, so is SELECTED";
    let s = include_str!("queries/all.sql");
}
#[cfg(test)]
mod tests {
    const SETUP: &str = "INSERT INTO events VALUES (1)";
}
fn b() -> &'static str { "CREATE DATABASE t" }
"##;
    let found = in_source(src, &[]);
    assert_eq!(
        found,
        [
            (7, "SQL (UPDATE … SET) \"UPDATE events\"".to_string()),
            (11, "SQL (SELECT) \"SELECT \"quoted\" FROM t\"".to_string()),
            (13, "SQL (include_str!) \"queries/all.sql\"".to_string()),
            (
                19,
                "SQL (CREATE DATABASE) \"CREATE DATABASE t\"".to_string()
            ),
        ]
    );
    assert_eq!(in_source(src, &["CREATE DATABASE"]).len(), 3);
}

#[test]
fn statements_are_found_and_prose_is_not() {
    let sql = |s: &str| {
        statements(s)
            .into_iter()
            .map(|(_, w)| w)
            .collect::<Vec<_>>()
    };
    assert_eq!(sql("SELECT count(*) FROM entries"), ["SELECT"]);
    assert_eq!(sql("\\n  SELECT\\n x"), ["SELECT"]);
    assert_eq!(
        sql("INSERT OR IGNORE INTO t VALUES (1)"),
        ["INSERT OR", "VALUES ("]
    );
    assert_eq!(sql("UPDATE events SET a = 1"), ["UPDATE … SET"]);
    assert_eq!(sql("UPDATE events e\n SET a = 1"), ["UPDATE … SET"]);
    assert_eq!(
        sql("CREATE UNIQUE INDEX IF NOT EXISTS i ON t (a)"),
        ["CREATE INDEX"]
    );
    assert_eq!(sql("CREATE OR REPLACE FUNCTION f()"), ["CREATE FUNCTION"]);
    assert_eq!(
        sql("DROP DATABASE IF EXISTS x WITH (FORCE)"),
        ["DROP DATABASE"]
    );
    assert_eq!(sql("PRAGMA user_version"), ["PRAGMA"]);
    assert_eq!(
        sql("WITH last (id) AS (SELECT 1) SELECT id FROM last"),
        ["WITH … AS (", "SELECT", "SELECT"]
    );
    assert_eq!(
        sql("WITH x AS MATERIALIZED (VALUES (1))"),
        ["WITH … AS (", "VALUES ("]
    );
    assert_eq!(sql("BEGIN IMMEDIATE"), ["BEGIN IMMEDIATE"]);
    assert_eq!(sql(" COMMIT; "), ["COMMIT"]);
    assert_eq!(sql("SET LOCAL statement_timeout = 5"), ["SET LOCAL"]);
    assert_eq!(sql("SELECT "), ["SELECT"]);
    assert_eq!(
        sql("{EVENT_COLUMNS} FROM events e WHERE e.event = $1"),
        ["WHERE"]
    );
    assert_eq!(
        sql(" ORDER BY reported_ms DESC LIMIT ?2"),
        ["ORDER BY", "LIMIT"]
    );
    for prose in [
        "-----BEGIN CERTIFICATE-----",
        "select an event from the list",
        "SELECTED",
        "SELECT",
        "update the rules file, then set the role",
        "the UPDATE button",
        "events WITH conflicts",
        "CREATE the hub's CA first",
        "a node may DROP a connection",
        "WHERE",
        "BOTH AND NEITHER",
        "see sentinel_http::api::text and geo::geometry::Point",
        "the LIMIT is 500",
        "Delete from outbox",
    ] {
        assert!(
            sql(prose).is_empty(),
            "{prose:?} is prose, found {:?}",
            sql(prose)
        );
    }
}
