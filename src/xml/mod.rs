//! The XMPP stream codec: an owned element tree, an incremental stream reader
//! built on quick-xml, and a writer.
//!
//! An XMPP stream is one long XML document whose root, `<stream:stream>`, stays
//! open for the life of the connection; each child of the root (a stanza or a
//! negotiation element) is a unit of meaning. The reader therefore delivers
//! the header, then one [`Event::Element`] per complete top-level child, and
//! never waits for the document to end.
//!
//! Layout, one job per file:
//! - [`element`]: [`Element`], [`Node`], [`NsContext`] and serialisation;
//! - [`header`]: [`StreamHeader`] and stream-error helpers;
//! - [`error`]: [`XmlError`] (with its RFC 6120 stream-error condition) and [`Limits`];
//! - `builder`: turns quick-xml events into our events, enforcing RFC 6120 §11
//!   (shared by the async reader and [`Element::parse`]);
//! - [`reader`]: the dedicated reader task and its [`ReaderHandle`].

mod builder;
pub mod element;
pub mod error;
pub mod header;
pub mod reader;

pub use element::{Element, Node, NsContext};
pub use error::{Limits, XmlError};
pub use header::{StreamHeader, stream_error};
pub use reader::{ReadError, ReaderHandle, ReleaseError, Released, spawn_reader};

/// `http://etherx.jabber.org/streams`, the namespace of `<stream:stream>`,
/// `<stream:features>` and `<stream:error>`.
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// `jabber:server`, the content namespace of server-to-server streams.
pub const NS_SERVER: &str = "jabber:server";
/// `jabber:client`, the content namespace of client-to-server streams.
pub const NS_CLIENT: &str = "jabber:client";
/// `jabber:server:dialback`, conventionally bound to the `db` prefix.
pub const NS_DIALBACK: &str = "jabber:server:dialback";
/// `urn:ietf:params:xml:ns:xmpp-streams`, the namespace of stream-error conditions.
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// `urn:ietf:params:xml:ns:xmpp-tls`, STARTTLS.
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// `urn:ietf:params:xml:ns:xmpp-sasl`, SASL.
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// The namespace the `xml:` prefix is permanently bound to.
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// One thing read from an XMPP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The opening `<stream:stream ...>` tag (once per stream, again after each restart).
    Header(StreamHeader),
    /// One complete top-level element (stanza or negotiation element), namespaces resolved.
    Element(Element),
    /// Whitespace between top-level elements: a keep-alive (RFC 6120 §4.6.1).
    /// Delivered as soon as it arrives, so one run of whitespace may show up
    /// as several consecutive events depending on how the network split it.
    Whitespace,
    /// The closing `</stream:stream>`.
    End,
    /// The peer closed the connection (any partially received element is discarded).
    Eof,
}
