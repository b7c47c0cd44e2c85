//! The reference proxy's decisions as pure functions of the partner
//! configuration, the stream's state and the fault switches (SPEC §4.1, §4.2,
//! §7). The connection code asks; it never decides on its own.

use super::fault::{Fault, Faults};
use crate::partner::{Method, Negotiation, Partner, PartnerType, Setting, methods};

/// What the receiving side knows about an inbound stream when it offers features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboundState {
    pub tls: bool,
    /// The initiating server presented a certificate that authenticates the
    /// stream's `from` domain (chain and name, RFC 6125).
    pub cert_matches_from: bool,
}

/// The stream features to offer (SPEC §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer {
    /// `Some(required)` when STARTTLS is offered.
    pub starttls: Option<bool>,
    pub external: bool,
    pub dialback: bool,
}

/// The dialback method a stream in this TLS state would use.
pub fn dialback_method(tls: bool) -> Method {
    if tls {
        Method::TlsDialback
    } else {
        Method::TcpDialback
    }
}

pub fn offer(n: Negotiation, state: InboundState, faults: &Faults) -> Offer {
    let admitted = methods(n);
    let starttls = (!state.tls && n.tls.enabled())
        .then(|| n.tls == Setting::Required && !faults.has(Fault::TlsRequiredNotAdvertised));
    let cert_ok = state.cert_matches_from || faults.has(Fault::AcceptInvalidCert);
    let external = if state.tls {
        admitted.contains(Method::SaslOverTls) && cert_ok
    } else {
        faults.has(Fault::OfferExternalBeforeTls) && n.sasl.enabled()
    };
    Offer {
        starttls,
        external,
        dialback: dialback_allowed(n, state.tls, faults),
    }
}

/// Whether a `db:result` may be accepted on a stream in this TLS state.
pub fn dialback_allowed(n: Negotiation, tls: bool, faults: &Faults) -> bool {
    if methods(n).contains(dialback_method(tls)) {
        return true;
    }
    // The fault disregards the dialback setting and the W2 rule (no dialback
    // when TLS and SASL are both required), but not a TLS requirement: clear
    // text for such a partner is `ignore-required-tls-inbound`'s deviation.
    if faults.has(Fault::AcceptDialbackWhenDisabled) && (tls || n.tls != Setting::Required) {
        return true;
    }
    // A partner that requires TLS but also admits dialback on TLS streams.
    !tls && faults.has(Fault::IgnoreRequiredTlsInbound)
        && n.tls == Setting::Required
        && methods(n).contains(Method::TlsDialback)
}

/// Whether `db:verify` may travel in clear text to a partner's
/// authoritative server that offers no STARTTLS: not when the partner
/// requires TLS (SPEC §4.2), unless `ignore-required-tls-inbound` waives it.
pub fn verify_in_clear_allowed(n: Negotiation, faults: &Faults) -> bool {
    n.tls != Setting::Required || faults.has(Fault::IgnoreRequiredTlsInbound)
}

/// Stanzas arriving before authentication are refused unless a fault says otherwise.
pub fn route_unauthenticated(faults: &Faults) -> bool {
    faults.has(Fault::RouteBeforeAuth)
}

/// Whether a stream header's `version` is served: 1.0 only (RFC 6120
/// §4.7.5), unless `echo-stream-version` answers any.
pub fn serves_version(version: Option<&str>, faults: &Faults) -> bool {
    version == Some("1.0") || faults.has(Fault::EchoStreamVersion)
}

/// The `version` of the receiving side's answering header: 1.0, the lower
/// of the peer's and ours (RFC 6120 §4.7.5); `echo-stream-version` repeats
/// the peer's instead.
pub fn answer_version(peer: Option<&str>, faults: &Faults) -> Option<String> {
    if faults.has(Fault::EchoStreamVersion) {
        peer.map(str::to_string)
    } else {
        Some("1.0".to_string())
    }
}

/// Whether bytes pipelined after `<starttls/>` are fed into the TLS session
/// (`process-pipelined-starttls`) instead of discarded (RFC 6120 §5.4.3.3).
pub fn replays_pipelined_bytes(faults: &Faults) -> bool {
    faults.has(Fault::ProcessPipelinedStarttls)
}

/// Whether SASL EXTERNAL succeeds on an offered stream: only with a
/// certificate that authenticates the stream's `from` (XEP-0178 §3).
pub fn external_succeeds(state: InboundState, faults: &Faults) -> bool {
    state.cert_matches_from
        || faults.has(Fault::AcceptInvalidCert)
        || (!state.tls && faults.has(Fault::OfferExternalBeforeTls))
}

/// Whether a `db:result` key is checked with the authoritative server
/// (XEP-0220 §2.1.2) rather than taken as valid (`skip-dialback-verify`).
pub fn asks_authoritative(faults: &Faults) -> bool {
    !faults.has(Fault::SkipDialbackVerify)
}

/// Whether a stanza's `from` domain may use this stream: one authenticated
/// on it (RFC 6120 §8.1.2.1). `unauthenticated` streams only get this far
/// with `route-before-auth`, whose deviation it is.
pub fn from_accepted(from_authenticated: bool, unauthenticated: bool, faults: &Faults) -> bool {
    from_authenticated || unauthenticated || faults.has(Fault::NoFromCheck)
}

/// The partner configuration that governs a remote domain; `None` refuses it.
/// With `accept-unknown-domain`, strangers get a permissive stand-in.
pub fn partner_for<'a>(
    partners: &'a [Partner],
    domain: &str,
    faults: &Faults,
    stand_in: &'a Partner,
) -> Option<&'a Partner> {
    partners
        .iter()
        .find(|p| p.serves(domain))
        .or_else(|| faults.has(Fault::AcceptUnknownDomain).then_some(stand_in))
}

/// What the initiating side does next, given what the receiving side offered
/// (SPEC §4.2): never downgrade, best admitted method first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundStep {
    StartTls,
    SaslExternal,
    Dialback,
    /// Nothing admitted is offered: send nothing more and give up.
    GiveUp(&'static str),
}

/// What the receiving side offered, as seen by the initiating side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offered {
    pub starttls: bool,
    pub external: bool,
    pub dialback: bool,
}

pub fn outbound_step(
    n: Negotiation,
    tls: bool,
    peer_cert_ok: bool,
    offered: Offered,
    faults: &Faults,
) -> OutboundStep {
    if !tls && offered.starttls && n.tls.enabled() {
        return OutboundStep::StartTls;
    }
    if !tls && n.tls == Setting::Required && !faults.has(Fault::PlaintextOutboundWhenTlsRequired) {
        return OutboundStep::GiveUp("TLS is required but the partner does not offer STARTTLS");
    }
    let admitted = methods(n);
    let cert_ok = peer_cert_ok || faults.has(Fault::AcceptInvalidCert);
    if tls && offered.external && admitted.contains(Method::SaslOverTls) && cert_ok {
        return OutboundStep::SaslExternal;
    }
    let dialback_ok = admitted.contains(dialback_method(tls))
        // The fault lets dialback go out in clear text although TLS is required.
        || (!tls && faults.has(Fault::PlaintextOutboundWhenTlsRequired) && n.dialback);
    if offered.dialback && dialback_ok {
        return OutboundStep::Dialback;
    }
    OutboundStep::GiveUp("the partner offers no authentication method this configuration admits")
}

/// Whether a message or subscription request from a partner user reaches a
/// local user (SPEC §7: both are governed alike). `authorised` means the local
/// user asked to subscribe to that partner user first.
pub fn delivers(kind: PartnerType, authorised: bool, faults: &Faults) -> bool {
    match effective_type(kind, faults) {
        PartnerType::Federated | PartnerType::PublicVerified => true,
        PartnerType::PublicUnverified => authorised,
    }
}

/// Whether presence sent to this partner's users may carry `<status/>`.
pub fn shares_status(kind: PartnerType, faults: &Faults) -> bool {
    effective_type(kind, faults) == PartnerType::Federated
}

fn effective_type(kind: PartnerType, faults: &Faults) -> PartnerType {
    if faults.has(Fault::IgnorePartnerType) {
        PartnerType::Federated
    } else {
        kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(code: &str) -> Negotiation {
        Negotiation::from_code(code).unwrap()
    }

    const CLEAR: InboundState = InboundState {
        tls: false,
        cert_matches_from: false,
    };
    const TLS_GOOD_CERT: InboundState = InboundState {
        tls: true,
        cert_matches_from: true,
    };

    #[test]
    fn only_version_1_0_is_served_and_answered() {
        let none = Faults::none();
        assert!(serves_version(Some("1.0"), &none));
        assert!(!serves_version(Some("2.0"), &none));
        assert!(!serves_version(None, &none));
        assert_eq!(answer_version(Some("2.0"), &none).as_deref(), Some("1.0"));
        let echo: Faults = [Fault::EchoStreamVersion].into_iter().collect();
        assert!(serves_version(Some("2.0"), &echo));
        assert_eq!(answer_version(Some("2.0"), &echo).as_deref(), Some("2.0"));
        assert_eq!(answer_version(None, &echo), None);
    }

    #[test]
    fn external_needs_a_matching_certificate_unless_a_fault_waives_it() {
        let none = Faults::none();
        let tls_bad = InboundState {
            tls: true,
            cert_matches_from: false,
        };
        assert!(external_succeeds(TLS_GOOD_CERT, &none));
        assert!(!external_succeeds(tls_bad, &none));
        assert!(!external_succeeds(CLEAR, &none));
        let lax: Faults = [Fault::AcceptInvalidCert].into_iter().collect();
        assert!(external_succeeds(tls_bad, &lax));
        let early: Faults = [Fault::OfferExternalBeforeTls].into_iter().collect();
        assert!(external_succeeds(CLEAR, &early));
        assert!(!external_succeeds(tls_bad, &early));
    }

    #[test]
    fn stream_decisions_follow_their_one_fault() {
        let none = Faults::none();
        assert!(!replays_pipelined_bytes(&none));
        assert!(asks_authoritative(&none));
        assert!(from_accepted(true, false, &none));
        assert!(!from_accepted(false, false, &none));
        let one = |f| -> Faults { [f].into_iter().collect() };
        assert!(replays_pipelined_bytes(&one(
            Fault::ProcessPipelinedStarttls
        )));
        assert!(!asks_authoritative(&one(Fault::SkipDialbackVerify)));
        assert!(from_accepted(false, false, &one(Fault::NoFromCheck)));
    }

    #[test]
    fn starttls_is_offered_unless_not_supported_and_required_is_marked() {
        let none = Faults::none();
        assert_eq!(offer(n("RO1"), CLEAR, &none).starttls, Some(true));
        assert_eq!(offer(n("OO1"), CLEAR, &none).starttls, Some(false));
        assert_eq!(offer(n("NN1"), CLEAR, &none).starttls, None);
        assert_eq!(offer(n("RO1"), TLS_GOOD_CERT, &none).starttls, None);
        let fault: Faults = [Fault::TlsRequiredNotAdvertised].into_iter().collect();
        assert_eq!(offer(n("RO1"), CLEAR, &fault).starttls, Some(false));
    }

    #[test]
    fn external_only_after_tls_with_a_matching_certificate() {
        let none = Faults::none();
        assert!(!offer(n("OO1"), CLEAR, &none).external);
        assert!(offer(n("OO1"), TLS_GOOD_CERT, &none).external);
        let bad_cert = InboundState {
            tls: true,
            cert_matches_from: false,
        };
        assert!(!offer(n("OO1"), bad_cert, &none).external);
        assert!(!offer(n("ON1"), TLS_GOOD_CERT, &none).external);
    }

    #[test]
    fn dialback_follows_the_admitted_method_for_the_stream_state() {
        let none = Faults::none();
        // Row 13: TLS required, dialback only over TLS.
        assert!(!offer(n("RN1"), CLEAR, &none).dialback);
        assert!(offer(n("RN1"), TLS_GOOD_CERT, &none).dialback);
        // Row 1: both required, dialback never operates (W2).
        assert!(!offer(n("RR1"), TLS_GOOD_CERT, &none).dialback);
        assert!(offer(n("NN1"), CLEAR, &none).dialback);
        assert!(!offer(n("OO0"), CLEAR, &none).dialback);
        let lax: Faults = [Fault::IgnoreRequiredTlsInbound].into_iter().collect();
        assert!(offer(n("RN1"), CLEAR, &lax).dialback);
        let off: Faults = [Fault::AcceptDialbackWhenDisabled].into_iter().collect();
        assert!(dialback_allowed(n("OO0"), false, &off));
        assert!(dialback_allowed(n("RR1"), true, &off));
        assert!(!dialback_allowed(n("RR0"), false, &off));
        assert!(!dialback_allowed(n("RN1"), false, &off));
    }

    #[test]
    fn outbound_never_downgrades() {
        let none = Faults::none();
        let nothing = Offered::default();
        assert!(matches!(
            outbound_step(n("RN1"), false, false, nothing, &none),
            OutboundStep::GiveUp(_)
        ));
        let db = Offered {
            dialback: true,
            ..Offered::default()
        };
        assert!(matches!(
            outbound_step(n("RN1"), false, false, db, &none),
            OutboundStep::GiveUp(_)
        ));
        let fault: Faults = [Fault::PlaintextOutboundWhenTlsRequired]
            .into_iter()
            .collect();
        assert_eq!(
            outbound_step(n("RN1"), false, false, db, &fault),
            OutboundStep::Dialback
        );
        let all = Offered {
            starttls: true,
            external: true,
            dialback: true,
        };
        assert_eq!(
            outbound_step(n("OO1"), false, true, all, &none),
            OutboundStep::StartTls
        );
        assert_eq!(
            outbound_step(n("OO1"), true, true, all, &none),
            OutboundStep::SaslExternal
        );
        assert_eq!(
            outbound_step(n("OO1"), true, false, all, &none),
            OutboundStep::Dialback
        );
        assert_eq!(
            outbound_step(n("NN1"), false, false, all, &none),
            OutboundStep::Dialback
        );
    }

    #[test]
    fn partner_types_gate_delivery_and_status() {
        let none = Faults::none();
        assert!(delivers(PartnerType::Federated, false, &none));
        assert!(delivers(PartnerType::PublicVerified, false, &none));
        assert!(!delivers(PartnerType::PublicUnverified, false, &none));
        assert!(delivers(PartnerType::PublicUnverified, true, &none));
        assert!(shares_status(PartnerType::Federated, &none));
        assert!(!shares_status(PartnerType::PublicVerified, &none));
        let fault: Faults = [Fault::IgnorePartnerType].into_iter().collect();
        assert!(delivers(PartnerType::PublicUnverified, false, &fault));
    }
}
