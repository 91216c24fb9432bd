//! A small Rust lexer for the tidy rules: it tells code from comments and
//! string literals, and marks what only tests compile (`#[cfg(test)]`).
//!
//! It is not a parser and never tries to be: the rules ask "is this text
//! in a string literal?", "is this word in a comment?", "is this path in
//! code?", and a token stream with line numbers answers all three. It
//! understands what would otherwise fool a `grep`: string literals that span
//! lines, raw strings (`r#"…"#`), byte and C strings, escaped quotes, char
//! literals versus lifetimes, nested block comments.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ident,
    /// One punctuation character, except `::`, which is one token.
    Punct,
    /// A string literal of any flavour; `text` is its source between the
    /// quotes, escapes not processed (so offsets map back to lines).
    Str,
    Char,
    Lifetime,
    Number,
    /// A comment; `text` is what follows `//` (doc markers included, so
    /// `/// x` gives `/ x`) or what lies between `/*` and `*/`.
    Comment,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    /// The line (from 1) the token starts on.
    pub line: usize,
}

impl Token {
    pub fn is(&self, kind: Kind, text: &str) -> bool {
        self.kind == kind && self.text == text
    }

    pub fn punct(&self, text: &str) -> bool {
        self.is(Kind::Punct, text)
    }

    pub fn ident(&self, text: &str) -> bool {
        self.is(Kind::Ident, text)
    }
}

fn ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The tokens of a Rust source file, comments included.
pub fn lex(src: &str) -> Vec<Token> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied();
    let text = |a: usize, b: usize| c[a..b.min(c.len())].iter().collect::<String>();
    let newlines = |a: usize, b: usize| c[a..b.min(c.len())].iter().filter(|&&x| x == '\n').count();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == Some('/') {
            let mut j = i + 2;
            while j < c.len() && c[j] != '\n' {
                j += 1;
            }
            out.push(tok(Kind::Comment, text(i + 2, j), line));
            i = j;
        } else if ch == '/' && at(i + 1) == Some('*') {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && at(j + 1) == Some('*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && at(j + 1) == Some('/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            let end = if depth == 0 { j - 2 } else { j };
            out.push(tok(Kind::Comment, text(i + 2, end), line));
            line += newlines(i, j);
            i = j;
        } else if ident_start(ch) {
            let mut j = i;
            while at(j).is_some_and(ident_char) {
                j += 1;
            }
            let word = text(i, j);
            let next = at(j);
            // Raw strings (`r"…"`, `r#"…"#`, `br`, `cr`) and raw identifiers.
            if matches!(word.as_str(), "r" | "br" | "cr") && matches!(next, Some('"' | '#')) {
                let mut k = j;
                while at(k) == Some('#') {
                    k += 1;
                }
                let hashes = k - j;
                if at(k) == Some('"') {
                    let start = k + 1;
                    let mut e = start;
                    loop {
                        if e >= c.len() {
                            break;
                        }
                        if c[e] == '"' && (1..=hashes).all(|h| at(e + h) == Some('#')) {
                            break;
                        }
                        e += 1;
                    }
                    out.push(tok(Kind::Str, text(start, e), line));
                    line += newlines(i, e);
                    i = (e + 1 + hashes).min(c.len());
                    continue;
                }
                if word == "r" && hashes == 1 {
                    // `r#type`: an identifier spelt like a keyword.
                    let mut e = k;
                    while at(e).is_some_and(ident_char) {
                        e += 1;
                    }
                    out.push(tok(Kind::Ident, text(k, e), line));
                    i = e;
                    continue;
                }
            }
            if matches!(word.as_str(), "b" | "c") && next == Some('"') {
                let (lit, end) = quoted(&c, j);
                out.push(tok(Kind::Str, lit, line));
                line += newlines(i, end);
                i = end;
                continue;
            }
            if word == "b" && next == Some('\'') {
                let end = char_end(&c, j);
                out.push(tok(Kind::Char, text(j, end), line));
                i = end;
                continue;
            }
            out.push(tok(Kind::Ident, word, line));
            i = j;
        } else if ch == '"' {
            let (lit, end) = quoted(&c, i);
            out.push(tok(Kind::Str, lit, line));
            line += newlines(i, end);
            i = end;
        } else if ch == '\'' {
            // `'x'` and `'\n'` are chars; `'a` and `'static` are lifetimes.
            if at(i + 1) == Some('\\') || at(i + 2) == Some('\'') {
                let end = char_end(&c, i);
                out.push(tok(Kind::Char, text(i, end), line));
                i = end;
            } else {
                let mut j = i + 1;
                while at(j).is_some_and(ident_char) {
                    j += 1;
                }
                out.push(tok(Kind::Lifetime, text(i, j), line));
                i = j.max(i + 1);
            }
        } else if ch.is_ascii_digit() {
            let mut j = i;
            while at(j).is_some_and(|x| {
                ident_char(x) || (x == '.' && at(j + 1).is_some_and(|y| y.is_ascii_digit()))
            }) {
                j += 1;
            }
            out.push(tok(Kind::Number, text(i, j), line));
            i = j;
        } else if ch == ':' && at(i + 1) == Some(':') {
            out.push(tok(Kind::Punct, "::".into(), line));
            i += 2;
        } else {
            out.push(tok(Kind::Punct, ch.to_string(), line));
            i += 1;
        }
    }
    out
}

fn tok(kind: Kind, text: String, line: usize) -> Token {
    Token { kind, text, line }
}

/// The source between the quote at `open` and its closing quote, and the
/// index after the closing quote.
fn quoted(c: &[char], open: usize) -> (String, usize) {
    let mut j = open + 1;
    while j < c.len() && c[j] != '"' {
        j += if c[j] == '\\' { 2 } else { 1 };
    }
    let end = j.min(c.len());
    (c[open + 1..end].iter().collect(), (end + 1).min(c.len()))
}

/// The index after a char literal starting at the quote at `open`.
fn char_end(c: &[char], open: usize) -> usize {
    let mut j = open + 1;
    while j < c.len() && c[j] != '\'' && c[j] != '\n' {
        j += if c[j] == '\\' { 2 } else { 1 };
    }
    (j + 1).min(c.len())
}

/// Line comments that follow each other on consecutive lines, joined into
/// one block (so "invariants 3 and" + "4" reads as one phrase), as
/// `(first line, text with the comment markers removed, one line each)`.
pub fn comment_blocks(tokens: &[Token]) -> Vec<(usize, Vec<String>)> {
    let mut out: Vec<(usize, Vec<String>)> = Vec::new();
    for t in tokens.iter().filter(|t| t.kind == Kind::Comment) {
        // `split`, not `lines`: a block comment's last line counts even
        // when only `*/` is on it, so line numbers stay true.
        let lines: Vec<String> = t
            .text
            .split('\n')
            .map(|l| {
                l.trim_start_matches(['/', '!'])
                    .trim_start_matches([' ', '*'])
                    .to_string()
            })
            .collect();
        match out.last_mut() {
            Some((first, block)) if *first + block.len() == t.line => block.extend(lines),
            _ => out.push((t.line, lines)),
        }
    }
    out
}

/// The code tokens (comments dropped), each with whether only tests
/// compile it: it sits in an item under `#[cfg(test)]`, or the whole file
/// is (`#![cfg(test)]`). Also the names of `#[cfg(test)] mod x;` modules,
/// whose files are test code too.
pub fn code(tokens: &[Token]) -> (Vec<(Token, bool)>, Vec<String>) {
    let code: Vec<Token> = tokens
        .iter()
        .filter(|t| t.kind != Kind::Comment)
        .cloned()
        .collect();
    let mut test = vec![false; code.len()];
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < code.len() {
        if !code[i].punct("#") {
            i += 1;
            continue;
        }
        let inner = code.get(i + 1).is_some_and(|t| t.punct("!"));
        let open = if inner { i + 2 } else { i + 1 };
        if !code.get(open).is_some_and(|t| t.punct("[")) {
            i += 1;
            continue;
        }
        let close = matching(&code, open);
        let is_cfg_test = close == open + 5
            && code[open + 1].ident("cfg")
            && code[open + 2].punct("(")
            && code[open + 3].ident("test")
            && code[open + 4].punct(")");
        if !is_cfg_test {
            i = close + 1;
            continue;
        }
        if inner {
            // `#![cfg(test)]`: the whole file.
            return (code.into_iter().map(|t| (t, true)).collect(), test_mods);
        }
        // Skip further attributes on the same item.
        let mut start = close + 1;
        while code.get(start).is_some_and(|t| t.punct("#"))
            && code.get(start + 1).is_some_and(|t| t.punct("["))
        {
            start = matching(&code, start + 1) + 1;
        }
        let end = item_end(&code, start);
        if let Some(name) = mod_decl(&code, start) {
            if code.get(end).is_some_and(|t| t.punct(";")) {
                test_mods.push(name);
            }
        }
        for flag in test.iter_mut().take(end + 1).skip(i) {
            *flag = true;
        }
        i = end + 1;
    }
    (code.into_iter().zip(test).collect(), test_mods)
}

/// `mod name` at `i` (after any visibility), as `name`.
pub fn mod_decl(code: &[Token], i: usize) -> Option<String> {
    let mut j = i;
    if code.get(j)?.ident("pub") {
        j += 1;
        if code.get(j)?.punct("(") {
            j = matching(code, j) + 1;
        }
    }
    if code.get(j)?.ident("mod") && code.get(j + 1)?.kind == Kind::Ident {
        return Some(code[j + 1].text.clone());
    }
    None
}

/// The index of the bracket closing the one at `open` (or the last index).
pub fn matching(code: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, t) in code.iter().enumerate().skip(open) {
        if t.kind != Kind::Punct {
            continue;
        }
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    code.len().saturating_sub(1)
}

/// The index of the last token of the item starting at `start`: its `;` at
/// bracket depth 0, or (for items with a body: fn, mod, impl, struct, …)
/// the `}` closing its first top-level brace block. `use`, `const`,
/// `static`, `type` and `let` always end at their `;`, since braces inside
/// them (`use a::{b, c};`) do not end them.
pub fn item_end(code: &[Token], start: usize) -> usize {
    let until_semicolon = code[start..]
        .iter()
        .take(8)
        .find(|t| {
            t.kind == Kind::Ident && !matches!(t.text.as_str(), "pub" | "crate" | "super" | "in")
        })
        .is_some_and(|t| matches!(t.text.as_str(), "use" | "const" | "static" | "type" | "let"));
    let mut j = start;
    while j < code.len() {
        let t = &code[j];
        if t.punct(";") {
            return j;
        }
        if t.punct("(") || t.punct("[") {
            j = matching(code, j) + 1;
            continue;
        }
        if t.punct("{") {
            let close = matching(code, j);
            if !until_semicolon {
                return close;
            }
            j = close + 1;
            continue;
        }
        j += 1;
    }
    code.len().saturating_sub(1)
}

#[test]
fn the_lexer_tells_strings_and_comments_from_code() {
    let src = r####"
// SELECT in a comment
/* block /* nested */ still comment "not a string" */
let a = "multi
line \" SELECT";
let b = r#"raw "quoted" text"#;
let c = b"bytes"; let d = br##"x"# y"##;
let e = 'x'; let f = '\''; fn g<'a>(x: &'a str) {}
let h = r#type;
"####;
    let t = lex(src);
    let strs: Vec<(&str, usize)> = t
        .iter()
        .filter(|t| t.kind == Kind::Str)
        .map(|t| (t.text.as_str(), t.line))
        .collect();
    assert_eq!(
        strs,
        [
            ("multi\nline \\\" SELECT", 4),
            ("raw \"quoted\" text", 6),
            ("bytes", 7),
            ("x\"# y", 7)
        ]
    );
    let comments: Vec<&str> = t
        .iter()
        .filter(|t| t.kind == Kind::Comment)
        .map(|t| t.text.as_str())
        .collect();
    assert_eq!(
        comments,
        [
            " SELECT in a comment",
            " block /* nested */ still comment \"not a string\" "
        ]
    );
    assert!(t.iter().any(|t| t.kind == Kind::Lifetime && t.text == "'a"));
    assert_eq!(t.iter().filter(|t| t.kind == Kind::Char).count(), 2);
    assert!(t.iter().any(|t| t.ident("type") && t.line == 9));
    assert_eq!(t.last().map(|t| t.line), Some(9));
}

#[test]
fn cfg_test_items_and_modules_are_marked() {
    let src = "use a::b;\n#[cfg(test)]\nmod tests {\n    const Q: &str = \"x\";\n}\n#[cfg(test)]\n#[allow(dead_code)]\nmod more;\nfn f() { \"y\"; }\n";
    let (code, mods) = code(&lex(src));
    assert_eq!(mods, ["more"]);
    let strs: Vec<(String, bool)> = code
        .iter()
        .filter(|(t, _)| t.kind == Kind::Str)
        .map(|(t, test)| (t.text.clone(), *test))
        .collect();
    assert_eq!(strs, [("x".to_string(), true), ("y".to_string(), false)]);
}
