//! Authentication methods and the rule `methods(tls, sasl, dialback)` (SPEC §4).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Negotiation, Setting};

/// The three ways a server-to-server stream gets authenticated, in order of
/// preference (SPEC §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// STARTTLS, then SASL EXTERNAL with the initiating server's certificate.
    SaslOverTls,
    /// STARTTLS, then Server Dialback on the encrypted stream.
    TlsDialback,
    /// Server Dialback on an unencrypted stream.
    TcpDialback,
}

impl Method {
    /// Best first.
    pub const PREFERENCE: [Method; 3] = [
        Method::SaslOverTls,
        Method::TlsDialback,
        Method::TcpDialback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::SaslOverTls => "sasl-over-tls",
            Method::TlsDialback => "tls-dialback",
            Method::TcpDialback => "tcp-dialback",
        }
    }

    /// The spelling of SPEC §4's table.
    pub fn title(self) -> &'static str {
        match self {
            Method::SaslOverTls => "SASL over TLS",
            Method::TlsDialback => "TLS Dialback",
            Method::TcpDialback => "TCP Dialback",
        }
    }

    pub fn uses_tls(self) -> bool {
        self != Method::TcpDialback
    }

    pub fn uses_dialback(self) -> bool {
        self != Method::SaslOverTls
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of methods, always iterated in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Methods {
    sasl_over_tls: bool,
    tls_dialback: bool,
    tcp_dialback: bool,
}

impl Methods {
    pub fn contains(self, m: Method) -> bool {
        match m {
            Method::SaslOverTls => self.sasl_over_tls,
            Method::TlsDialback => self.tls_dialback,
            Method::TcpDialback => self.tcp_dialback,
        }
    }

    pub fn is_empty(self) -> bool {
        !(self.sasl_over_tls || self.tls_dialback || self.tcp_dialback)
    }

    pub fn intersection(self, other: Methods) -> Methods {
        Methods {
            sasl_over_tls: self.sasl_over_tls && other.sasl_over_tls,
            tls_dialback: self.tls_dialback && other.tls_dialback,
            tcp_dialback: self.tcp_dialback && other.tcp_dialback,
        }
    }

    /// Members, best first.
    pub fn iter(self) -> impl Iterator<Item = Method> {
        Method::PREFERENCE
            .into_iter()
            .filter(move |m| self.contains(*m))
    }

    pub fn to_vec(self) -> Vec<Method> {
        self.iter().collect()
    }
}

impl Serialize for Methods {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("—");
        }
        let titles: Vec<&str> = self.iter().map(Method::title).collect();
        f.write_str(&titles.join(", "))
    }
}

/// The methods a configuration admits (SPEC §4):
/// - SASL over TLS ⇔ tls ≠ not-supported ∧ sasl ≠ not-supported
/// - TLS Dialback  ⇔ dialback ∧ tls ≠ not-supported ∧ ¬(tls = required ∧ sasl = required)
/// - TCP Dialback  ⇔ dialback ∧ tls ≠ required
pub fn methods(n: Negotiation) -> Methods {
    let tls_possible = n.tls != Setting::NotSupported;
    let both_required = n.tls == Setting::Required && n.sasl == Setting::Required;
    Methods {
        sasl_over_tls: tls_possible && n.sasl != Setting::NotSupported,
        tls_dialback: n.dialback && tls_possible && !both_required,
        tcp_dialback: n.dialback && n.tls != Setting::Required,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_over_tls_needs_both_tls_and_sasl() {
        for n in Negotiation::all() {
            assert_eq!(
                methods(n).contains(Method::SaslOverTls),
                n.tls.enabled() && n.sasl.enabled(),
                "{n:?}"
            );
        }
    }

    #[test]
    fn dialback_off_leaves_only_sasl() {
        for n in Negotiation::all().filter(|n| !n.dialback) {
            assert!(!methods(n).contains(Method::TlsDialback), "{n:?}");
            assert!(!methods(n).contains(Method::TcpDialback), "{n:?}");
        }
    }

    #[test]
    fn iteration_is_in_preference_order() {
        let all = methods(Negotiation::new(Setting::Optional, Setting::Optional, true));
        assert_eq!(
            all.to_vec(),
            vec![
                Method::SaslOverTls,
                Method::TlsDialback,
                Method::TcpDialback
            ]
        );
        assert_eq!(all.to_string(), "SASL over TLS, TLS Dialback, TCP Dialback");
        assert_eq!(Methods::default().to_string(), "—");
    }
}
