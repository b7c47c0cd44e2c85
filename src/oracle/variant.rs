//! The dimensions of a pairing besides the two configurations: direction,
//! certificate variant (SPEC §5), DNS variant (SPEC §6) and policy profile (§4.4).

kebab_enum! {
    /// Which side opens the stream that carries the test stanza.
    Direction {
        /// The simulated peer initiates; the target receives (SPEC §4.1).
        Inbound = "in",
        /// The target initiates toward the simulated peer (SPEC §4.2).
        Outbound = "out",
    }
}

pub use crate::pki::CertVariant;

use crate::requirement::{Keyword, Requirement};

/// Why a certificate of this variant does not authenticate its domain under
/// RFC 6125 and RFC 6120 §13.7.2, or `None` when it does. Case domains always
/// have at least three labels, so a `wildcard` certificate covers them.
pub fn certificate_defect(c: CertVariant) -> Option<&'static str> {
    match c {
        CertVariant::Valid
        | CertVariant::XmppAddrOnly
        | CertVariant::SrvIdOnly
        | CertVariant::Wildcard => None,
        CertVariant::WrongName => Some("its identities name another domain"),
        CertVariant::Expired => Some("it has expired"),
        CertVariant::NotYetValid => Some("it is not yet valid"),
        CertVariant::SelfSigned => Some("it is self-signed"),
        CertVariant::UntrustedCa => Some("it is issued by an untrusted CA"),
        CertVariant::NoClientCert => Some("no certificate is presented"),
        CertVariant::CnOnly => {
            Some("its only identity is the subject CN, which RFC 6125 does not accept")
        }
    }
}

/// The rule a receiving server breaks when it authenticates a peer by a
/// certificate of this variant (SPEC §4.6, §5). RFC 6120 §13.7.2.1 applies
/// RFC 6125; RFC 9525 obsoletes RFC 6125 but does not update RFC 6120, so
/// what RFC 6125 allows is never a failure here.
pub fn certificate_rule(c: CertVariant) -> Requirement {
    match c {
        // RFC 6125 §6.4.4: with no SAN at all a client "MAY as a last resort"
        // use the CN; RFC 9525 §2: the CN "MUST NOT be used to identify a
        // service". Advisory: non-strict, never a failure.
        CertVariant::CnOnly => Requirement::advisory("RFC 9525 §2 (RFC 6125 §6.4.4 allows it)"),
        // XEP-0178 §3: EXTERNAL rests on the certificate presented in TLS.
        CertVariant::NoClientCert => Requirement::protocol(Keyword::Must, "RFC 6120 §6.3.4"),
        // Its SAN names another domain and only its CN names the peer: RFC
        // 6125 §6.4.4, "a client MUST NOT seek a match for a reference
        // identifier of CN-ID if the presented identifiers include a DNS-ID".
        CertVariant::WrongName => {
            Requirement::protocol(Keyword::MustNot, "RFC 6125 §6.4.4 (via RFC 6120 §13.7.2.1)")
        }
        // Validity, signature and path (RFC 6120 §13.7.2, §5.4.3.1: "MUST
        // attempt to validate"; an invalid certificate is not trusted).
        _ => Requirement::protocol(Keyword::Must, "RFC 6120 §13.7.2"),
    }
}

/// For identity types a receiving server may but need not support, the rule
/// that makes refusing them allowed (never a failure), with the text; `None`
/// where refusing a valid certificate of this variant breaks a requirement.
pub fn optional_identity(c: CertVariant) -> Option<Requirement> {
    match c {
        // RFC 6120 §13.7.1.2.1: XmppAddr support "is encouraged" (no keyword).
        CertVariant::XmppAddrOnly => Some(Requirement::protocol(
            Keyword::May,
            "RFC 6120 §13.7.1.2.1 (XmppAddr support is encouraged, not required)",
        )),
        // RFC 6125 §6.4.3: a client "MAY match" a wildcard.
        CertVariant::Wildcard => Some(Requirement::protocol(Keyword::May, "RFC 6125 §6.4.3")),
        _ => None,
    }
}

/// The requirement a refused valid certificate of this variant breaks:
/// SRV-ID support is REQUIRED (RFC 6120 §13.7.1.2.1).
pub fn identity_support_rule(c: CertVariant) -> Option<Requirement> {
    match c {
        CertVariant::SrvIdOnly => Some(Requirement::protocol(
            Keyword::Required,
            "RFC 6120 §13.7.1.2.1",
        )),
        _ => None,
    }
}

kebab_enum! {
    /// How the simulated peer's domain resolves (SPEC §6).
    DnsVariant {
        /// `_xmpp-server._tcp` SRV record to a live port.
        Srv = "srv",
        /// No SRV: the domain's A record on port 5269.
        AOnly = "a-only",
        /// The domain does not exist.
        Nxdomain = "nxdomain",
        /// SRV to a port where nothing listens.
        SrvToDeadPort = "srv-to-dead-port",
        /// Several SRV records; the first by priority is dead.
        SrvMultiple = "srv-multiple",
        /// The partner is configured with a proxy FQDN; SRV points elsewhere and must not be used.
        ProxyFqdn = "proxy-fqdn",
    }
}

impl DnsVariant {
    /// Whether a correct resolver reaches the peer's server under this variant.
    pub fn reachable(self) -> bool {
        !matches!(self, DnsVariant::Nxdomain | DnsVariant::SrvToDeadPort)
    }
}

kebab_enum! {
    /// Policy profile for situations the matrix does not settle (SPEC §4.4).
    Policy {
        /// The default: an unusable certificate only rules out SASL EXTERNAL;
        /// dialback is used when both sides admit it (XEP-0178 fallback).
        Lync = "lync",
        /// An unusable certificate where SASL is admitted refuses the connection.
        Strict = "strict",
    }
}

// `kebab_enum!` fixes the derives, so the default is written out.
#[allow(clippy::derivable_impls)]
impl Default for Policy {
    fn default() -> Self {
        Policy::Lync
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for v in DnsVariant::ALL {
            assert_eq!(v.as_str().parse::<DnsVariant>(), Ok(*v));
        }
        assert_eq!("in".parse::<Direction>(), Ok(Direction::Inbound));
        assert!(
            "sideways"
                .parse::<Direction>()
                .unwrap_err()
                .contains("in, out")
        );
    }

    /// The oracle's verdict agrees with the minting side's own account of
    /// what each variant is for, on a three-label domain.
    #[test]
    fn defect_exactly_when_the_pki_says_it_fails() {
        for v in CertVariant::ALL {
            assert_eq!(
                certificate_defect(v).is_none(),
                v.passes_for("peer.s2s.test"),
                "{v}"
            );
        }
    }
}
