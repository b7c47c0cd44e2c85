//! Fault switches: each makes the reference proxy deviate from the
//! specification in exactly one named way, so that the harness can prove it
//! notices. They are all consulted through `Faults::has`, in this one place,
//! and without any switch the proxy is correct.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

kebab_enum! {
    /// One named deviation.
    Fault {
        /// Accept `db:result` although the partner's configuration does not admit
        /// the dialback method for the stream's state (SPEC §4.1).
        AcceptDialbackWhenDisabled = "accept-dialback-when-disabled",
        /// Offer (and accept) SASL EXTERNAL on a stream that is not encrypted.
        OfferExternalBeforeTls = "offer-external-before-tls",
        /// Answer `db:result` with `valid` without asking the authoritative server.
        SkipDialbackVerify = "skip-dialback-verify",
        /// Outbound, go on in clear text when TLS is required but not offered.
        PlaintextOutboundWhenTlsRequired = "plaintext-outbound-when-tls-required",
        /// Treat every presented certificate as valid for every domain.
        AcceptInvalidCert = "accept-invalid-cert",
        /// Feed bytes pipelined after `<starttls/>` into the encrypted stream.
        ProcessPipelinedStarttls = "process-pipelined-starttls",
        /// Do not check a stanza's `from` against the authenticated domains.
        NoFromCheck = "no-from-check",
        /// Treat every partner as `federated`.
        IgnorePartnerType = "ignore-partner-type",
        /// Route stanzas that arrive before the stream is authenticated.
        RouteBeforeAuth = "route-before-auth",
        /// Inbound, let a partner that requires TLS authenticate in clear text.
        IgnoreRequiredTlsInbound = "ignore-required-tls-inbound",
        /// Accept streams and dialback from domains that match no partner.
        AcceptUnknownDomain = "accept-unknown-domain",
        /// Offer STARTTLS without `<required/>` when TLS is required.
        TlsRequiredNotAdvertised = "tls-required-not-advertised",
        /// Answer a stream header with the initiating entity's `version`
        /// instead of the lower of it and 1.0 (RFC 6120 §4.7.5).
        EchoStreamVersion = "echo-stream-version",
        /// Refuse, at the TLS layer, a client certificate without the
        /// clientAuth purpose (the serverAuth-only public-CA profile, SPEC §5).
        RefuseServerAuthOnly = "refuse-server-auth-only",
        /// Outbound, fall back to the A record on 5269 although the only SRV
        /// target is "." (RFC 6120 §3.2.1).
        IgnoreSrvDot = "ignore-srv-dot",
        /// Connect to IPv4 addresses only, ignoring AAAA records.
        Ipv4Only = "ipv4-only",
}
}

/// The set of switches a proxy runs with; empty means correct.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    pub fn none() -> Faults {
        Faults::default()
    }

    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Fault> for Faults {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Faults {
        Faults(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        assert_eq!(Fault::ALL.len(), 16);
        for f in Fault::ALL {
            assert_eq!(f.as_str().parse::<Fault>(), Ok(*f));
        }
        assert!(
            "nope"
                .parse::<Fault>()
                .unwrap_err()
                .to_string()
                .contains("route-before-auth")
        );
    }
}
