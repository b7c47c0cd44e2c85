//! RFC 6125 service identity checks for XMPP server-to-server streams
//! (RFC 6120 §13.7.1.2, XEP-0178).
//!
//! Reference identifiers for a domain D: DNS-ID `D` (a wildcard may stand for
//! the complete left-most label), SRV-ID `_xmpp-server.D`, and an XmppAddr
//! (id-on-xmppAddr) equal to `D`. The subject CN is reported but never
//! accepted: SPEC §5 forbids SASL EXTERNAL on a CN-only certificate.

use std::fmt;

use x509_parser::der_parser::asn1_rs::{Any, FromDer, Tag};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

use crate::pki::{OID_SRV_NAME, OID_XMPP_ADDR};

/// The kind of identity a certificate presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdKind {
    /// subjectAltName dNSName.
    DnsId,
    /// subjectAltName otherName SRVName (RFC 4985).
    SrvId,
    /// subjectAltName otherName id-on-xmppAddr (RFC 6120 §13.7.1.4).
    XmppAddr,
    /// Subject common name: reported, never accepted.
    CommonName,
}

impl IdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::DnsId => "DNS-ID",
            IdKind::SrvId => "SRV-ID",
            IdKind::XmppAddr => "XmppAddr",
            IdKind::CommonName => "CN",
        }
    }
}

/// One identity found in the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PresentedId {
    pub kind: IdKind,
    pub value: String,
}

impl fmt::Display for PresentedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.value)
    }
}

/// The outcome of matching a certificate against a reference domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityReport {
    /// Every identity found: SAN entries in certificate order, then CNs.
    pub presented: Vec<PresentedId>,
    /// The identity that matched the domain, if any.
    pub matched: Option<PresentedId>,
    /// Why it matched or did not, for reports.
    pub reason: String,
}

impl IdentityReport {
    pub fn is_match(&self) -> bool {
        self.matched.is_some()
    }

    fn failed(reason: impl Into<String>) -> IdentityReport {
        IdentityReport {
            presented: vec![],
            matched: None,
            reason: reason.into(),
        }
    }
}

const SRV_PREFIX: &str = "_xmpp-server.";

fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether a DNS-ID (possibly a wildcard) matches `domain` (already normalised).
/// The wildcard must be the whole left-most label, stands for exactly one
/// label, and needs a base of at least two labels (`*.test` matches nothing).
fn dns_id_matches(presented: &str, domain: &str) -> bool {
    let presented = norm(presented);
    if let Some(base) = presented.strip_prefix("*.") {
        if base.contains('*') || base.split('.').count() < 2 {
            return false;
        }
        return match domain.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == base,
            None => false,
        };
    }
    !presented.contains('*') && presented == domain
}

/// Decode an otherName value (`[0] EXPLICIT` around a string) to text.
fn other_name_string(value: &[u8]) -> Option<(Tag, String)> {
    let (_, outer) = Any::from_der(value).ok()?;
    let (_, inner) = Any::from_der(outer.data).ok()?;
    let text = std::str::from_utf8(inner.data).ok()?.to_owned();
    Some((inner.tag(), text))
}

/// A certificate whose subjectAltName extension does not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad subjectAltName extension: {0}")]
pub struct BadSan(#[source] pub x509_parser::error::X509Error);

/// All identities a certificate presents; `Err` when it cannot be parsed.
pub fn presented_ids(cert: &X509Certificate<'_>) -> Result<(Vec<PresentedId>, bool), BadSan> {
    let mut ids = Vec::new();
    let san = cert.subject_alternative_name().map_err(BadSan)?;
    let has_san = san.is_some();
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(n) => ids.push(PresentedId {
                kind: IdKind::DnsId,
                value: (*n).to_owned(),
            }),
            GeneralName::OtherName(oid, value) => {
                let oid = oid.to_id_string();
                let kind = if oid == OID_XMPP_ADDR {
                    IdKind::XmppAddr
                } else if oid == OID_SRV_NAME {
                    IdKind::SrvId
                } else {
                    continue;
                };
                // Encoding (UTF8String resp. IA5String) is not judged here:
                // the value is what identifies the server.
                if let Some((_, text)) = other_name_string(value) {
                    ids.push(PresentedId { kind, value: text });
                }
            }
            _ => {}
        }
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(value) = cn.as_str() {
            ids.push(PresentedId {
                kind: IdKind::CommonName,
                value: value.to_owned(),
            });
        }
    }
    Ok((ids, has_san))
}

/// Match the end-entity certificate `cert_der` against the reference `domain`.
pub fn check_identity(cert_der: &[u8], domain: &str) -> IdentityReport {
    let cert = match x509_parser::parse_x509_certificate(cert_der) {
        Ok((_, cert)) => cert,
        Err(e) => return IdentityReport::failed(format!("certificate cannot be parsed: {e}")),
    };
    let (presented, has_san) = match presented_ids(&cert) {
        Ok(found) => found,
        Err(e) => return IdentityReport::failed(e.to_string()),
    };
    let domain = norm(domain);
    let srv_id = format!("{SRV_PREFIX}{domain}");
    let matches = |id: &PresentedId| match id.kind {
        IdKind::DnsId => dns_id_matches(&id.value, &domain),
        IdKind::SrvId => norm(&id.value) == srv_id,
        IdKind::XmppAddr => norm(&id.value) == domain,
        IdKind::CommonName => false,
    };
    // Preference order for the report: DNS-ID, SRV-ID, XmppAddr.
    let matched = [IdKind::DnsId, IdKind::SrvId, IdKind::XmppAddr]
        .into_iter()
        .find_map(|kind| {
            presented
                .iter()
                .find(|id| id.kind == kind && matches(id))
                .cloned()
        });
    let reason = match &matched {
        Some(id) => match id.kind {
            IdKind::DnsId if id.value.starts_with('*') => {
                format!("wildcard DNS-ID {} matches {domain}", id.value)
            }
            _ => format!("{id} matches {domain}"),
        },
        None => no_match_reason(&presented, has_san, &domain),
    };
    IdentityReport {
        presented,
        matched,
        reason,
    }
}

fn no_match_reason(presented: &[PresentedId], has_san: bool, domain: &str) -> String {
    let cn_matches = presented
        .iter()
        .any(|id| id.kind == IdKind::CommonName && norm(&id.value) == domain);
    let sans: Vec<String> = presented
        .iter()
        .filter(|id| id.kind != IdKind::CommonName)
        .map(|id| id.to_string())
        .collect();
    if !has_san || sans.is_empty() {
        if cn_matches {
            return format!(
                "identity only in the subject CN ({domain}); CN is never accepted as an \
                 S2S identity (RFC 6125 §6.4.4, XEP-0178)"
            );
        }
        return format!("no subjectAltName identity and no CN for {domain}");
    }
    let mut reason = format!(
        "no identity matches {domain} (presented: {})",
        sans.join(", ")
    );
    if let Some(srv) = presented
        .iter()
        .find(|id| id.kind == IdKind::SrvId && !norm(&id.value).starts_with(SRV_PREFIX))
    {
        reason.push_str(&format!(
            "; SRV-ID {} is not for service xmpp-server",
            srv.value
        ));
    }
    if let Some(w) = presented.iter().find(|id| {
        id.kind == IdKind::DnsId && id.value.starts_with("*.") && norm(&id.value[2..]) == domain
    }) {
        reason.push_str(&format!(
            "; wildcard {} covers sub-domains only, not {domain} itself",
            w.value
        ));
    }
    if cn_matches {
        reason.push_str("; the subject CN matches but CN is ignored when a SAN is present");
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::dns_id_matches;

    #[test]
    fn wildcard_rules() {
        assert!(dns_id_matches("*.example.test", "a.example.test"));
        assert!(dns_id_matches("*.Example.TEST.", "a.example.test"));
        assert!(!dns_id_matches("*.example.test", "example.test"));
        assert!(!dns_id_matches("*.example.test", "a.b.example.test"));
        assert!(!dns_id_matches("*.test", "example.test"));
        assert!(!dns_id_matches("a*.example.test", "ab.example.test"));
        assert!(!dns_id_matches("a.*.test", "a.b.test"));
        assert!(dns_id_matches("Example.Test", "example.test"));
    }
}
