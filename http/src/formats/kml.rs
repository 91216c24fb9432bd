//! KML 2.2 (OGC 07-147r2) as Google Earth, QGIS and GIS tools read it: a
//! `Document` of `Placemark`s, each with its `name`, `description`, a
//! `TimeStamp` and a `Point` (`lon,lat`), and every other field as
//! `ExtendedData/Data` (`<Data name="severity"><value>3</value></Data>`),
//! which tools show as the placemark's attributes and the node's import
//! reads back.
//!
//! Text is escaped for XML (`&`, `<`, `>`, `"`, `'`); a carriage return is
//! written as `&#13;` so a reader does not turn it into a newline, and the
//! few characters XML 1.0 cannot carry at all (most C0 controls) become
//! U+FFFD. Anything else, non-ASCII included, is written as UTF-8.
//!
//! Never does: IO.

/// The media type of a KML file.
pub const MEDIA_TYPE: &str = "application/vnd.google-earth.kml+xml";

/// The namespace of KML 2.2.
pub const NAMESPACE: &str = "http://www.opengis.net/kml/2.2";

/// The end of the document [`document_start`] opened.
pub const DOCUMENT_END: &str = "</Document>\n</kml>\n";

/// The start of a KML document named `name`, up to its first placemark.
pub fn document_start(name: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<kml xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\">\n<Document>\n<name>");
    escape_into(&mut out, name);
    out.push_str("</name>\n");
    out
}

/// One placemark: an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Placemark<'a> {
    /// Shown as the placemark's label: the event's title.
    pub name: &'a str,
    /// `None` where the caller has none (the API's lists carry none).
    pub description: Option<&'a str>,
    /// The report time, RFC 3339; `None` when it has no such form (after
    /// year 9999: `reported_ms` among `data` still holds it).
    pub when: Option<&'a str>,
    pub lon: f64,
    pub lat: f64,
    /// Every other field, in order, as `ExtendedData`.
    pub data: &'a [(&'a str, String)],
}

/// Appends `p` to `out`, on lines of its own.
pub fn placemark(out: &mut String, p: &Placemark<'_>) {
    out.push_str("<Placemark>\n<name>");
    escape_into(out, p.name);
    out.push_str("</name>\n");
    if let Some(description) = p.description {
        out.push_str("<description>");
        escape_into(out, description);
        out.push_str("</description>\n");
    }
    if let Some(when) = p.when {
        out.push_str("<TimeStamp><when>");
        escape_into(out, when);
        out.push_str("</when></TimeStamp>\n");
    }
    if !p.data.is_empty() {
        out.push_str("<ExtendedData>\n");
        for (name, value) in p.data {
            out.push_str("<Data name=\"");
            escape_into(out, name);
            out.push_str("\"><value>");
            escape_into(out, value);
            out.push_str("</value></Data>\n");
        }
        out.push_str("</ExtendedData>\n");
    }
    // `f64`'s Display is the shortest text that parses back to the same
    // value, and never uses an exponent, which KML does not allow.
    out.push_str("<Point><coordinates>");
    out.push_str(&p.lon.to_string());
    out.push(',');
    out.push_str(&p.lat.to_string());
    out.push_str("</coordinates></Point>\n</Placemark>\n");
}

/// Appends `text` escaped for XML element content and attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            // XML 1.0 (section 2.2) has no way to write these, not even as
            // character references.
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped_and_non_ascii_kept() {
        let mut out = String::new();
        escape_into(&mut out, "<&>\"' Zürich 東京\r\n\t\u{1}");
        assert_eq!(
            out,
            "&lt;&amp;&gt;&quot;&apos; Zürich 東京&#13;\n\t\u{FFFD}"
        );
    }

    #[test]
    fn a_placemark_holds_name_description_time_data_and_point() {
        let data = [("severity", "3".to_owned()), ("a<b", "x&y".to_owned())];
        let mut out = document_start("Events & more");
        placemark(
            &mut out,
            &Placemark {
                name: "Fire <big>",
                description: Some("Smoke"),
                when: Some("2024-05-01T12:00:00.000Z"),
                lon: -0.1276,
                lat: 51.5072,
                data: &data,
            },
        );
        out.push_str(DOCUMENT_END);
        assert!(out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\">"));
        assert!(out.contains("<name>Events &amp; more</name>"));
        assert!(out.contains("<name>Fire &lt;big&gt;</name>"));
        assert!(out.contains("<description>Smoke</description>"));
        assert!(out.contains("<TimeStamp><when>2024-05-01T12:00:00.000Z</when></TimeStamp>"));
        assert!(out.contains("<Data name=\"severity\"><value>3</value></Data>"));
        assert!(out.contains("<Data name=\"a&lt;b\"><value>x&amp;y</value></Data>"));
        assert!(out.contains("<Point><coordinates>-0.1276,51.5072</coordinates></Point>"));
        assert!(out.ends_with("</Placemark>\n</Document>\n</kml>\n"));
    }
}
