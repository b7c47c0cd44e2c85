//! The stream header (`<stream:stream …>`) and stream errors.

use super::element::{Element, NsContext, escape_attr};
use super::{NS_DIALBACK, NS_SERVER, NS_STREAM_ERRORS, NS_STREAMS};

/// The opening tag of a stream, as received or to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
    pub version: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// The default namespace declared on the root (`jabber:server` on S2S);
    /// empty when none was declared.
    pub default_ns: String,
    /// Whether the root used the conventional `stream` prefix bound to
    /// `http://etherx.jabber.org/streams`. (A root in any other namespace is
    /// rejected by the reader with `invalid-namespace`; this flag records the
    /// softer deviation of a different prefix, which RFC 6120 §4.8.5 allows.)
    pub stream_ns_ok: bool,
    /// Prefix declarations on the root, `(prefix, namespace)`, e.g.
    /// `("stream", NS_STREAMS)`, `("db", "jabber:server:dialback")`.
    pub prefixes: Vec<(String, String)>,
    /// Every attribute as written, namespace declarations included. When
    /// sending, attributes here that the typed fields do not cover are appended
    /// (scripted scenarios use this for odd headers).
    pub attrs: Vec<(String, String)>,
}

impl StreamHeader {
    /// A server-to-server header: default namespace `jabber:server`, `db`
    /// prefix declared, `version='1.0'`.
    pub fn server() -> StreamHeader {
        StreamHeader {
            version: Some("1.0".into()),
            default_ns: NS_SERVER.into(),
            stream_ns_ok: true,
            prefixes: vec![
                ("stream".into(), NS_STREAMS.into()),
                ("db".into(), NS_DIALBACK.into()),
            ],
            ..StreamHeader::default()
        }
    }

    pub fn with_from(mut self, v: impl Into<String>) -> Self {
        self.from = Some(v.into());
        self
    }
    pub fn with_to(mut self, v: impl Into<String>) -> Self {
        self.to = Some(v.into());
        self
    }
    pub fn with_id(mut self, v: impl Into<String>) -> Self {
        self.id = Some(v.into());
        self
    }
    pub fn with_version(mut self, v: Option<&str>) -> Self {
        self.version = v.map(str::to_owned);
        self
    }
    pub fn with_lang(mut self, v: impl Into<String>) -> Self {
        self.lang = Some(v.into());
        self
    }

    /// The namespace used for `prefix`, if the header declared it.
    pub fn prefix_ns(&self, prefix: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, ns)| ns.as_str())
    }

    /// The context children of this stream are written in / parsed under.
    pub fn ns_context(&self) -> NsContext {
        NsContext {
            default_ns: self.default_ns.clone(),
            prefixes: self.prefixes.clone(),
        }
    }

    /// The context of the header *as this crate writes it* (the `stream`
    /// prefix is always bound correctly on output).
    pub fn sent_ns_context(&self) -> NsContext {
        let mut ctx = NsContext::with_default(self.default_ns.clone());
        ctx.prefixes.push(("stream".into(), NS_STREAMS.into()));
        ctx.prefixes
            .extend(self.prefixes.iter().filter(|(p, _)| p != "stream").cloned());
        ctx
    }

    /// `<?xml version='1.0'?><stream:stream xmlns=… xmlns:stream=… xmlns:db=… from=… to=… id=… version=… xml:lang=…>`
    /// with absent fields omitted.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version='1.0'?><stream:stream");
        let mut attr = |k: &str, v: &str| {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape_attr(v, &mut out);
            out.push('\'');
        };
        if !self.default_ns.is_empty() {
            attr("xmlns", &self.default_ns);
        }
        attr("xmlns:stream", NS_STREAMS);
        for (p, ns) in self.prefixes.iter().filter(|(p, _)| p != "stream") {
            attr(&format!("xmlns:{p}"), ns);
        }
        let typed = [
            ("from", &self.from),
            ("to", &self.to),
            ("id", &self.id),
            ("version", &self.version),
            ("xml:lang", &self.lang),
        ];
        for (k, v) in typed {
            if let Some(v) = v {
                attr(k, v);
            }
        }
        for (k, v) in &self.attrs {
            let covered =
                k == "xmlns" || k.starts_with("xmlns:") || typed.iter().any(|(name, _)| name == k);
            if !covered {
                attr(k, v);
            }
        }
        out.push('>');
        out
    }
}

/// The closing tag of a stream.
pub const STREAM_END: &str = "</stream:stream>";

/// `<stream:error><CONDITION xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>[<text …>TEXT</text>]</stream:error>`
/// (RFC 6120 §4.9.2).
pub fn stream_error(condition: &str, text: Option<&str>) -> Element {
    let mut e =
        Element::new(NS_STREAMS, "error").with_child(Element::new(NS_STREAM_ERRORS, condition));
    if let Some(t) = text {
        e = e.with_child(Element::new(NS_STREAM_ERRORS, "text").with_text(t));
    }
    e
}

/// The defined condition of a received `<stream:error>`, if `e` is one.
pub fn stream_error_condition(e: &Element) -> Option<&str> {
    if !e.is(NS_STREAMS, "error") {
        return None;
    }
    e.children_elements()
        .find(|c| c.ns == NS_STREAM_ERRORS && c.name != "text")
        .map(|c| c.name.as_str())
}

impl StreamHeader {
    /// The opening tag with exactly the attributes received, in order (no XML
    /// declaration): how a received header is shown in transcripts.
    pub fn to_xml_verbatim(&self) -> String {
        // The root's own prefix is not stored; any prefix bound to the streams
        // namespace reproduces it (the reader rejected every other root).
        let prefix = if self.stream_ns_ok {
            Some("stream")
        } else {
            self.prefixes
                .iter()
                .find(|(_, ns)| ns == NS_STREAMS)
                .map(|(p, _)| p.as_str())
        };
        let mut out = match prefix {
            Some(p) => format!("<{p}:stream"),
            None => String::from("<stream"),
        };
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape_attr(v, &mut out);
            out.push('\'');
        }
        out.push('>');
        out
    }
}
