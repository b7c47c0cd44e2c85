//! Placeholders in scenario text: `{peer}`, `{target}`, `{stream-id}`,
//! `{dialback-key}`, `{peer-base64}`, `{base64:TEXT}`, `{capture:NAME}`, and
//! in patterns `{any}` and `{absent}`; `{padding}` in padded raw sends.
//!
//! Every `{` must open a known placeholder, so that a typo is a load error
//! instead of text that silently never matches.

use serde::Serialize;

use super::error::TemplateError;

/// One placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// The scenario's peer domain.
    Peer,
    /// The target's domain.
    Target,
    /// The id of the target's last stream header on the current connection.
    StreamId,
    /// The XEP-0185 key of the `db:result` being sent (for its `from`/`to`
    /// and the current stream id).
    DialbackKey,
    /// Base64 of the peer domain (a SASL authorization identity).
    PeerBase64,
    /// Base64 of literal text.
    Base64(String),
    /// A value captured by an earlier `expect` (or captured now, in a pattern).
    Capture(String),
    /// Pattern only: any value.
    Any,
    /// Pattern only: the attribute must be absent.
    Absent,
    /// Padded raw sends only: filler bytes.
    Padding,
}

impl Placeholder {
    fn parse(name: &str) -> Option<Placeholder> {
        Some(match name {
            "peer" => Placeholder::Peer,
            "target" => Placeholder::Target,
            "stream-id" => Placeholder::StreamId,
            "dialback-key" => Placeholder::DialbackKey,
            "peer-base64" => Placeholder::PeerBase64,
            "any" => Placeholder::Any,
            "absent" => Placeholder::Absent,
            "padding" => Placeholder::Padding,
            _ => {
                if let Some(text) = name.strip_prefix("base64:") {
                    Placeholder::Base64(text.to_owned())
                } else if let Some(n) = name.strip_prefix("capture:") {
                    let ok = !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    if !ok {
                        return None;
                    }
                    Placeholder::Capture(n.to_owned())
                } else {
                    return None;
                }
            }
        })
    }

    /// How it is written.
    pub fn source(&self) -> String {
        match self {
            Placeholder::Peer => "{peer}".into(),
            Placeholder::Target => "{target}".into(),
            Placeholder::StreamId => "{stream-id}".into(),
            Placeholder::DialbackKey => "{dialback-key}".into(),
            Placeholder::PeerBase64 => "{peer-base64}".into(),
            Placeholder::Base64(t) => format!("{{base64:{t}}}"),
            Placeholder::Capture(n) => format!("{{capture:{n}}}"),
            Placeholder::Any => "{any}".into(),
            Placeholder::Absent => "{absent}".into(),
            Placeholder::Padding => "{padding}".into(),
        }
    }
}

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Hole(Placeholder),
}

/// Text with placeholders, as written in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub segments: Vec<Segment>,
}

impl Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl Template {
    /// Splits `source` into text and placeholders; an unknown or unclosed
    /// placeholder is an error naming it.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(TemplateError::Unclosed(source.to_owned()));
            };
            let name = &after[..close];
            let hole =
                Placeholder::parse(name).ok_or_else(|| TemplateError::Unknown(name.to_owned()))?;
            segments.push(Segment::Hole(hole));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template {
            source: source.to_owned(),
            segments,
        })
    }

    /// The placeholders used.
    pub fn holes(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Hole(p) => Some(p),
            Segment::Text(_) => None,
        })
    }

    /// Fills every placeholder with `fill`'s answer; `fill` returning `None`
    /// keeps the placeholder as written (patterns keep `{any}` and captures).
    pub fn render<E>(
        &self,
        mut fill: impl FnMut(&Placeholder) -> Result<Option<String>, E>,
    ) -> Result<String, E> {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Hole(p) => match fill(p)? {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&p.source()),
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_renders() {
        let t = Template::parse("<a to='{target}' id='{capture:x}'>{any}</a>").unwrap();
        assert_eq!(t.holes().count(), 3);
        let out = t
            .render(|p| {
                Ok::<_, ()>(match p {
                    Placeholder::Target => Some("t.test".into()),
                    _ => None,
                })
            })
            .unwrap();
        assert_eq!(out, "<a to='t.test' id='{capture:x}'>{any}</a>");
    }

    #[test]
    fn unknown_placeholders_are_errors() {
        let e = Template::parse("{pear}").unwrap_err().to_string();
        assert!(e.contains("{pear}"), "{e}");
        let e = Template::parse("{peer").unwrap_err().to_string();
        assert!(e.contains("unclosed"), "{e}");
        assert!(Template::parse("{capture:}").is_err());
        assert_eq!(
            Template::parse("{base64:a.test}").unwrap().holes().next(),
            Some(&Placeholder::Base64("a.test".into()))
        );
    }
}
