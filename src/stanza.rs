//! Stanza helpers (RFC 6120 §8): kinds, addresses, error replies.

use crate::xml::{Element, NS_SERVER};

const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Whether `e` is a stanza of a server-to-server stream.
pub fn is_stanza(e: &Element) -> bool {
    e.ns == NS_SERVER && matches!(e.name.as_str(), "message" | "presence" | "iq")
}

/// The domain part of a JID (`user@domain/resource` → `domain`), lower-cased.
pub fn domain_of(jid: &str) -> String {
    let rest = jid.split_once('@').map_or(jid, |(_, d)| d);
    rest.split('/').next().unwrap_or(rest).to_ascii_lowercase()
}

/// The bare JID (`user@domain`), lower-cased.
pub fn bare(jid: &str) -> String {
    jid.split('/').next().unwrap_or(jid).to_ascii_lowercase()
}

/// The local part of a JID, if any.
pub fn local_part(jid: &str) -> Option<&str> {
    jid.split_once('@').map(|(l, _)| l)
}

/// The error reply to `stanza` (RFC 6120 §8.3): addresses swapped, same id,
/// `type='error'`, the original children kept, then `<error/>`.
pub fn error_reply(stanza: &Element, error_type: &str, condition: &str) -> Element {
    let mut reply = Element::new(NS_SERVER, stanza.name.clone()).with_attr("type", "error");
    if let Some(from) = stanza.attr("to") {
        reply = reply.with_attr("from", from);
    }
    if let Some(to) = stanza.attr("from") {
        reply = reply.with_attr("to", to);
    }
    if let Some(id) = stanza.attr("id") {
        reply = reply.with_attr("id", id);
    }
    for child in stanza.children_elements() {
        reply = reply.with_child(child.clone());
    }
    reply.with_child(
        Element::new(NS_SERVER, "error")
            .with_attr("type", error_type)
            .with_child(Element::new(NS_STANZAS, condition)),
    )
}

/// The condition of a stanza's `<error/>`, if it carries one.
pub fn error_condition(stanza: &Element) -> Option<String> {
    stanza.child(NS_SERVER, "error").and_then(|e| {
        e.children_elements()
            .find(|c| c.ns == NS_STANZAS && c.name != "text")
            .map(|c| c.name.clone())
    })
}

/// An XMPP ping (XEP-0199 §4.3, server to server): an iq-get that must be
/// answered over the answering server's own stream to `from`.
pub fn ping(from: &str, to: &str, id: &str) -> Element {
    Element::new(NS_SERVER, "iq")
        .with_attr("type", "get")
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("id", id)
        .with_child(Element::new("urn:xmpp:ping", "ping"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jid_parts() {
        assert_eq!(domain_of("Alice@Target.Test/res"), "target.test");
        assert_eq!(domain_of("target.test"), "target.test");
        assert_eq!(bare("alice@target.test/r"), "alice@target.test");
        assert_eq!(local_part("alice@target.test"), Some("alice"));
        assert_eq!(local_part("target.test"), None);
    }

    #[test]
    fn error_reply_swaps_addresses() {
        let m = Element::new(NS_SERVER, "message")
            .with_attr("from", "a@x.test")
            .with_attr("to", "b@y.test")
            .with_attr("id", "1");
        let r = error_reply(&m, "cancel", "service-unavailable");
        assert_eq!(r.attr("from"), Some("b@y.test"));
        assert_eq!(r.attr("to"), Some("a@x.test"));
        assert_eq!(r.attr("type"), Some("error"));
        assert_eq!(error_condition(&r).as_deref(), Some("service-unavailable"));
    }
}
