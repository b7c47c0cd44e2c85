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
        | CertVariant::Wildcard
        | CertVariant::XmppAddrAndDns => None,
        // Chain and names are sound; the missing clientAuth purpose only
        // matters where it authenticates an initiating server, a policy
        // question the oracle settles per direction (SPEC §5, §4.4).
        CertVariant::ServerAuthOnly => None,
        CertVariant::WrongName => Some("its identities (SAN and CN) name another domain"),
        CertVariant::SanMismatchCnMatch => {
            Some("its DNS-ID names another domain (only its CN names the peer)")
        }
        CertVariant::MissingIntermediate => {
            Some("it is sent without the intermediate CA certificate its chain needs")
        }
        CertVariant::ExpiredIntermediate => Some("its intermediate CA certificate has expired"),
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
        CertVariant::SanMismatchCnMatch => {
            Requirement::protocol(Keyword::MustNot, "RFC 6125 §6.4.4 (via RFC 6120 §13.7.2.1)")
        }
        // A path to a trust anchor through a current intermediate is part of
        // validation (RFC 5280 §6.1.3: every certificate of the path must be
        // within its validity; RFC 6120 §13.7.2 applies it).
        CertVariant::MissingIntermediate | CertVariant::ExpiredIntermediate => {
            Requirement::protocol(Keyword::Must, "RFC 6120 §13.7.2 (RFC 5280 §6.1)")
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
        // RFC 6120 §13.7.1.2.1 makes XmppAddr support encouraged; a target
        // that takes only the DNS-ID of `xmpp-addr-and-dns` still matches,
        // so nothing is optional there.
        // RFC 6125 §6.4.3: a client "MAY match" a wildcard.
        CertVariant::Wildcard => Some(Requirement::protocol(Keyword::May, "RFC 6125 §6.4.3")),
        _ => None,
    }
}

/// `server-auth-only` as an initiating server's certificate: the RFCs do
/// not settle whether a certificate without the clientAuth purpose may
/// authenticate the initiating side (RFC 6120 §13.7.1 names no extended key
/// usage), so it is a policy question (SPEC §4.4, §5).
pub fn server_auth_only_rule() -> Requirement {
    Requirement::policy("SPEC §5 (server-auth-only), SPEC §4.4")
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
        /// SRV to a host with only an AAAA record (`::1`); the peer listens on `[::1]`.
        AaaaOnly = "aaaa-only",
        /// The only `_xmpp-server` SRV record has target `.`: the service is
        /// decidedly not available (an A record on 5269 leads to the peer, so
        /// a target that falls back anyway is seen).
        SrvDot = "srv-dot",
        /// `_xmpps-server` (direct TLS, preferred) points at a port that
        /// speaks STARTTLS; `_xmpp-server` points there too.
        XmppsToStarttlsPort = "xmpps-to-starttls-port",
        /// Inbound dialback: the originating domain's authoritative server
        /// resolves to an address where nothing listens.
        AuthoritativeUnreachable = "authoritative-unreachable",
    }
}

impl DnsVariant {
    /// Whether a correct resolver reaches the peer's server under this variant.
    pub fn reachable(self) -> bool {
        !matches!(
            self,
            DnsVariant::Nxdomain
                | DnsVariant::SrvToDeadPort
                | DnsVariant::SrvDot
                | DnsVariant::AuthoritativeUnreachable
        )
    }

    /// Whether the variant means something in `direction`: an unreachable
    /// authoritative server is the receiving target's problem only.
    pub fn applies_to(self, direction: Direction) -> bool {
        self != DnsVariant::AuthoritativeUnreachable || direction == Direction::Inbound
    }
}

/// RFC 6120 §3.2.1 step 3: "if the result of the SRV lookup is a single
/// resource record with a Target of \".\" ... the initiating entity MUST
/// abort SRV processing at this point"; step 8: having received a response,
/// "it SHOULD NOT attempt the fallback process" of §3.2.2. Reaching the peer
/// under `srv-dot` means that fallback was used: a SHOULD NOT.
pub fn srv_dot_rule() -> Requirement {
    Requirement::protocol(
        Keyword::ShouldNot,
        "RFC 6120 §3.2.1 (a target of \".\": abort SRV processing, no §3.2.2 fallback)",
    )
}

/// XEP-0220 §2.5: "the server that generates the error SHOULD still attempt
/// to send the dialback error instead of terminating the stream".
pub fn dialback_error_rule() -> Requirement {
    Requirement::protocol(Keyword::Should, "XEP-0220 §2.5")
}

/// XEP-0220 §2.5's table names the conditions for an authoritative server
/// that cannot be reached ("<remote-connection-failed/>: the Receiving
/// Server was unable to establish a connection to the Authoritative
/// Server"; <remote-server-not-found/>, <remote-server-timeout/>) as
/// guidance, without a keyword: advisory.
pub fn unreachable_condition_rule() -> Requirement {
    Requirement::advisory("XEP-0220 §2.5 (table of dialback error conditions)")
}

/// The conditions XEP-0220 §2.5's table gives for an authoritative server
/// that cannot be reached or found.
pub const UNREACHABLE_CONDITIONS: [&str; 3] = [
    "remote-connection-failed",
    "remote-server-not-found",
    "remote-server-timeout",
];

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
                .to_string()
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
