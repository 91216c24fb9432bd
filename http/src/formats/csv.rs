//! CSV as RFC 4180 writes it: fields separated by commas, records ended
//! by CRLF, a field quoted (its quotes doubled) when it holds a comma, a
//! quote, a line break, or space at either end, which readers would
//! otherwise split or trim. UTF-8, without a byte order mark (many
//! programs read one as part of the first column's name).
//!
//! Never does: IO.

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
}
