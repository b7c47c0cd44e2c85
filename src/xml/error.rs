//! Errors of the XML layer and the limits that protect it.

/// Why a stream could not be read any further.
///
/// Each variant maps to the RFC 6120 §4.9.3 stream-error condition a server
/// would send in response (see [`XmlError::condition`]); the string is a human
/// detail for transcripts and reports, never parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// A construct RFC 6120 §11.1 forbids: DTD, comment, processing instruction,
    /// entity reference other than the five predefined ones.
    #[error("restricted XML: {0}")]
    RestrictedXml(String),
    /// The bytes are not well-formed XML (RFC 6120 §11.3).
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// Well-formed XML the stream cannot carry, e.g. text directly inside `<stream:stream>`.
    #[error("bad format: {0}")]
    BadFormat(String),
    /// An element or attribute uses a prefix that no `xmlns:` declaration binds.
    #[error("bad namespace prefix: {0}")]
    BadNamespacePrefix(String),
    /// The stream root is not `{http://etherx.jabber.org/streams}stream`.
    #[error("invalid namespace: {0}")]
    InvalidNamespace(String),
    /// Not UTF-8: an XML declaration naming another encoding, or invalid UTF-8 bytes.
    #[error("unsupported encoding: {0}")]
    UnsupportedEncoding(String),
    /// The stream `version` is not one we speak. The reader never raises this
    /// itself (version negotiation is protocol policy); callers may.
    #[error("unsupported version: {0}")]
    UnsupportedVersion(String),
    /// A [`Limits`] bound was exceeded.
    #[error("policy violation: {0}")]
    PolicyViolation(String),
    /// The transport failed (not the peer's XML).
    #[error("I/O error: {0}")]
    Io(String),
}

impl XmlError {
    /// The RFC 6120 §4.9.3 defined condition for this error, e.g. `restricted-xml`.
    ///
    /// An I/O failure has no meaningful stream error (the stream is gone); it
    /// maps to `internal-server-error` so callers always have a condition.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::RestrictedXml(_) => "restricted-xml",
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::BadFormat(_) => "bad-format",
            XmlError::BadNamespacePrefix(_) => "bad-namespace-prefix",
            XmlError::InvalidNamespace(_) => "invalid-namespace",
            XmlError::UnsupportedEncoding(_) => "unsupported-encoding",
            XmlError::UnsupportedVersion(_) => "unsupported-version",
            XmlError::PolicyViolation(_) => "policy-violation",
            XmlError::Io(_) => "internal-server-error",
        }
    }

    /// The detail string.
    pub fn detail(&self) -> &str {
        match self {
            XmlError::RestrictedXml(s)
            | XmlError::NotWellFormed(s)
            | XmlError::BadFormat(s)
            | XmlError::BadNamespacePrefix(s)
            | XmlError::InvalidNamespace(s)
            | XmlError::UnsupportedEncoding(s)
            | XmlError::UnsupportedVersion(s)
            | XmlError::PolicyViolation(s)
            | XmlError::Io(s) => s,
        }
    }
}

/// Resource bounds for one stream. Exceeding one is a `policy-violation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element, header or whitespace run, in bytes as
    /// received. Enforced while the bytes stream in, so a peer cannot make
    /// us buffer more than this (plus one read buffer).
    pub max_stanza_bytes: usize,
    /// Deepest element nesting inside a top-level element (the top-level
    /// element itself is depth 1).
    pub max_depth: usize,
}

impl Limits {
    /// 256 KiB per stanza, 64 levels.
    pub const DEFAULT: Limits = Limits {
        max_stanza_bytes: 256 * 1024,
        max_depth: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Maps a quick-xml error to ours. Two cases need context this function does
/// not have, so the reader handles them first: a size-limit hit (surfaces as an
/// I/O error) and truncated markup at end of input (a syntax error to
/// quick-xml, but on a stream simply the peer hanging up).
pub(crate) fn from_quick_xml(err: &quick_xml::Error) -> XmlError {
    use quick_xml::Error as E;
    use quick_xml::escape::EscapeError;
    use quick_xml::name::NamespaceError;
    match err {
        E::Io(io) => XmlError::Io(io.to_string()),
        E::Encoding(e) => XmlError::UnsupportedEncoding(e.to_string()),
        E::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            XmlError::RestrictedXml(format!("entity reference &{name}; is not predefined"))
        }
        E::Escape(EscapeError::TooManyNestedEntities) => {
            XmlError::RestrictedXml("nested entity references".into())
        }
        E::Namespace(NamespaceError::UnknownPrefix(p)) => {
            XmlError::BadNamespacePrefix(format!("prefix '{p}' is not declared"))
        }
        E::Namespace(
            e @ (NamespaceError::TooManyBindings(_) | NamespaceError::TooDeeplyNested(_)),
        ) => XmlError::PolicyViolation(e.to_string()),
        other => XmlError::NotWellFormed(other.to_string()),
    }
}
