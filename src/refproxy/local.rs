//! The local users: what happens to stanzas for them (delivery governed by
//! the partner type, SPEC §7; a message is echoed back to prove delivery; a
//! ping is answered) and what they send (the outbound trigger).

use std::sync::Arc;

use super::{ProxyEvent, Settings, Shared, lock, outbound, policy};
use crate::partner::Partner;
use crate::stanza::{self, bare, domain_of, local_part};
use crate::xml::{Element, NS_SERVER};

const NS_PING: &str = "urn:xmpp:ping";
/// The status text local users share with federated partners only.
const STATUS: &str = "Available for federation tests";

/// A stanza from a partner user (already checked against the stream's
/// authenticated domains) addressed to this proxy.
pub(crate) fn handle_inbound(
    shared: &Arc<Shared>,
    settings: &Settings,
    partner: &Partner,
    e: Element,
) {
    let to = e.attr("to").unwrap_or_default().to_string();
    let from = e.attr("from").unwrap_or_default().to_string();
    let local_domain = domain_of(&to);
    if !settings.partners.is_local(&local_domain) {
        // A proxy does not relay between partners.
        return reply(
            shared,
            &local_domain,
            &e,
            stanza::error_reply(&e, "cancel", "service-unavailable"),
        );
    }
    let user = local_part(&to).map(str::to_ascii_lowercase);
    let known = user.as_ref().is_none_or(|u| {
        settings
            .partners
            .local
            .users
            .iter()
            .any(|l| l.eq_ignore_ascii_case(u))
    });
    let authorised = lock(&shared.authorisations).contains(&(bare(&to), bare(&from)));
    let allowed = policy::delivers(partner.partner_type, authorised, &settings.faults);
    let ty = e.attr("type").unwrap_or_default().to_string();
    match e.name.as_str() {
        "iq" => iq(shared, &local_domain, known, e),
        _ if !known => {
            refuse(shared, &to, &from, "no such user");
            if ty != "error" {
                reply(
                    shared,
                    &local_domain,
                    &e,
                    stanza::error_reply(&e, "cancel", "service-unavailable"),
                );
            }
        }
        "message" => {
            if ty == "error" || user.is_none() {
                return deliver(shared, &to, &from, &e);
            }
            if !allowed {
                refuse(shared, &to, &from, NOT_AUTHORISED);
                return reply(
                    shared,
                    &local_domain,
                    &e,
                    stanza::error_reply(&e, "cancel", "service-unavailable"),
                );
            }
            deliver(shared, &to, &from, &e);
            reply(shared, &local_domain, &e, echo(&e));
        }
        "presence" => presence(shared, settings, partner, &local_domain, allowed, e),
        _ => {}
    }
}

fn presence(
    shared: &Arc<Shared>,
    settings: &Settings,
    partner: &Partner,
    local_domain: &str,
    allowed: bool,
    e: Element,
) {
    let to = bare(e.attr("to").unwrap_or_default());
    let from = bare(e.attr("from").unwrap_or_default());
    let ty = e.attr("type").unwrap_or_default();
    if !allowed {
        refuse(shared, &to, &from, NOT_AUTHORISED);
        if matches!(ty, "subscribe" | "probe") {
            let no = Element::new(NS_SERVER, "presence")
                .with_attr("from", &to)
                .with_attr("to", &from)
                .with_attr("type", "unsubscribed");
            reply(shared, local_domain, &e, no);
        }
        return;
    }
    deliver(shared, &to, &from, &e);
    if ty == "subscribe" {
        // Partners that may subscribe without approval get it at once (SPEC §7).
        let yes = Element::new(NS_SERVER, "presence")
            .with_attr("from", &to)
            .with_attr("to", &from)
            .with_attr("type", "subscribed");
        reply(shared, local_domain, &e, yes);
    }
    if matches!(ty, "subscribe" | "probe") {
        let mut available = Element::new(NS_SERVER, "presence")
            .with_attr("from", &to)
            .with_attr("to", &from);
        if policy::shares_status(partner.partner_type, &settings.faults) {
            available = available.with_child(Element::new(NS_SERVER, "status").with_text(STATUS));
        }
        reply(shared, local_domain, &e, available);
    }
}

/// XMPP Ping (XEP-0199) to the domain or a user is answered; other requests
/// are not implemented (RFC 6120 §8.2.3: every get/set gets an answer).
fn iq(shared: &Arc<Shared>, local_domain: &str, known: bool, e: Element) {
    let ty = e.attr("type").unwrap_or_default();
    if !matches!(ty, "get" | "set") {
        return;
    }
    let answer = if known && ty == "get" && e.child(NS_PING, "ping").is_some() {
        let mut result = Element::new(NS_SERVER, "iq").with_attr("type", "result");
        for attr in ["to", "from", "id"] {
            let swapped = match attr {
                "to" => "from",
                "from" => "to",
                other => other,
            };
            if let Some(v) = e.attr(attr) {
                result = result.with_attr(swapped, v);
            }
        }
        result
    } else if known {
        stanza::error_reply(&e, "cancel", "feature-not-implemented")
    } else {
        stanza::error_reply(&e, "cancel", "service-unavailable")
    };
    reply(shared, local_domain, &e, answer);
}

/// The echo of a message: same type, id and payload, addresses swapped.
fn echo(e: &Element) -> Element {
    let mut m = e.clone();
    m.attrs.retain(|(k, _)| k != "to" && k != "from");
    m.set_attr("from", e.attr("to").unwrap_or_default());
    m.set_attr("to", e.attr("from").unwrap_or_default());
    m
}

/// Sends `answer` to the domain that sent `original`, over our outbound stream.
fn reply(shared: &Arc<Shared>, local_domain: &str, original: &Element, answer: Element) {
    let remote = domain_of(original.attr("from").unwrap_or_default());
    outbound::enqueue(shared, local_domain, &remote, answer);
}

fn deliver(shared: &Arc<Shared>, to: &str, from: &str, e: &Element) {
    shared.record(ProxyEvent::Delivered {
        to: to.to_string(),
        from: from.to_string(),
        stanza: e.to_string(),
    });
}

fn refuse(shared: &Arc<Shared>, to: &str, from: &str, reason: &str) {
    shared.record(ProxyEvent::NotDelivered {
        to: to.to_string(),
        from: from.to_string(),
        reason: reason.to_string(),
    });
}

/// Why `policy::delivers` said no: only public-unverified partners are gated.
const NOT_AUTHORISED: &str = "public-unverified partner user not authorised by the local user";

/// A local user sends `stanza` (its `from` must be a local JID).
pub(crate) fn send_from_local(shared: &Arc<Shared>, mut stanza: Element) {
    let settings = shared.settings();
    let from = stanza.attr("from").unwrap_or_default().to_string();
    let to = stanza.attr("to").unwrap_or_default().to_string();
    let (from_domain, to_domain) = (domain_of(&from), domain_of(&to));
    if !settings.partners.is_local(&from_domain) || to_domain.is_empty() {
        shared.record(ProxyEvent::Bounced {
            to: from,
            stanza: stanza.to_string(),
            reason: "a local user's stanza needs a local `from` and a `to`".into(),
        });
        return;
    }
    if stanza.name == "presence" {
        if stanza.attr("type") == Some("subscribe") {
            lock(&shared.authorisations).insert((bare(&from), bare(&to)));
        }
        let partner_type = settings
            .partners
            .partner_for(&to_domain)
            .map(|p| p.partner_type);
        if partner_type.is_some_and(|t| !policy::shares_status(t, &settings.faults)) {
            stanza
                .children
                .retain(|c| !matches!(c, crate::xml::Node::Element(el) if el.name == "status"));
        }
    }
    outbound::enqueue(shared, &from_domain, &to_domain, stanza);
}
