//! CSV as RFC 4180 writes it: fields separated by commas, records ended
//! by CRLF, a field quoted (its quotes doubled) when it holds a comma, a
//! quote, a line break, or space at either end, which readers would
//! otherwise split or trim. UTF-8, without a byte order mark (many
//! programs read one as part of the first column's name).
//!
//! Text people typed can start a spreadsheet formula when the file is
//! opened in a spreadsheet (`=HYPERLINK(…)`, `@SUM(…)`: CWE-1236), so the
//! writers pass such fields through [`defuse`], which puts a `'` before
//! them as OWASP advises; the importer takes it off again with
//! [`undefuse`], so an export reads back as it was written. Numbers are
//! never defused (`-12.5` stays a number).
//!
//! Never does: IO.

use std::borrow::Cow;

/// What a spreadsheet reads as the start of a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `field` made safe to open in a spreadsheet: a `'` before it when it
/// starts with a formula character, or with a `'` that [`undefuse`]
/// would otherwise take off.
pub fn defuse(field: &str) -> Cow<'_, str> {
    let mut chars = field.chars();
    let must = match chars.next() {
        Some(c) if FORMULA_START.contains(&c) => true,
        Some('\'') => chars
            .next()
            .is_some_and(|c| c == '\'' || FORMULA_START.contains(&c)),
        _ => false,
    };
    if must {
        Cow::Owned(format!("'{field}"))
    } else {
        Cow::Borrowed(field)
    }
}

/// The field [`defuse`] was given: a leading `'` taken off when what
/// follows it starts with a formula character or another `'`. Any other
/// text, such as `'Twas night`, is left as it is.
pub fn undefuse(field: &str) -> &str {
    match field.strip_prefix('\'') {
        Some(rest) if rest.starts_with('\'') || rest.starts_with(FORMULA_START) => rest,
        _ => field,
    }
}

/// Appends one record of `fields` to `out`, ended by CRLF.
pub fn record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field_into(out, field.as_ref());
    }
    out.push_str("\r\n");
}

/// Appends one field, quoted when it must be.
fn field_into(out: &mut String, field: &str) {
    let must_quote = field.contains([',', '"', '\r', '\n'])
        || field.starts_with([' ', '\t'])
        || field.ends_with([' ', '\t']);
    if !must_quote {
        out.push_str(field);
        return;
    }
    out.push('"');
    for c in field.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        let mut out = String::new();
        record(
            &mut out,
            &["plain", "", "a,b", "say \"hi\"", "two\nlines", " pad", "ü"],
        );
        assert_eq!(
            out,
            "plain,,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" pad\",ü\r\n"
        );
        let mut out = String::new();
        record(&mut out, &[String::from("x")]);
        assert_eq!(out, "x\r\n");
    }

    #[test]
    fn formulas_are_defused_and_read_back_as_written() {
        for (typed, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("''", "'''"),
            ("'Twas night", "'Twas night"),
            ("'", "'"),
            ("flood = high", "flood = high"),
            ("", ""),
        ] {
            assert_eq!(defuse(typed), written, "{typed:?}");
            assert_eq!(undefuse(&defuse(typed)), typed, "{typed:?}");
        }
        // What other tools wrote is left alone unless it is defused text.
        assert_eq!(undefuse("'Twas"), "'Twas");
        assert_eq!(undefuse("'=1"), "=1");
    }
}
