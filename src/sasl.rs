//! SASL EXTERNAL for server-to-server streams (RFC 6120 §6, XEP-0178).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::xml::{Element, NS_SASL};

pub const EXTERNAL: &str = "EXTERNAL";

/// `<auth mechanism='EXTERNAL'>`: `None` sends `=` (no authorization
/// identity, XEP-0178 §3 step 7), `Some(domain)` its base64.
pub fn auth_external(authzid: Option<&str>) -> Element {
    let payload = match authzid {
        None => "=".to_string(),
        Some(id) => STANDARD.encode(id.as_bytes()),
    };
    Element::new(NS_SASL, "auth")
        .with_attr("mechanism", EXTERNAL)
        .with_text(payload)
}

pub fn success() -> Element {
    Element::new(NS_SASL, "success")
}

/// `<failure><CONDITION/></failure>`, e.g. `not-authorized`, `invalid-authzid`,
/// `invalid-mechanism` (RFC 6120 §6.5).
pub fn failure(condition: &str) -> Element {
    Element::new(NS_SASL, "failure").with_child(Element::new(NS_SASL, condition))
}

pub fn is_success(e: &Element) -> bool {
    e.is(NS_SASL, "success")
}

/// The condition of a `<failure/>`, if `e` is one.
pub fn failure_condition(e: &Element) -> Option<String> {
    e.is(NS_SASL, "failure").then(|| {
        e.children_elements()
            .find(|c| c.name != "text")
            .map(|c| c.name.clone())
            .unwrap_or_default()
    })
}

/// An `<auth/>` as the receiving side sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub mechanism: String,
    /// The requested authorization identity: `None` for `=` or an empty payload.
    pub authzid: Result<Option<String>, String>,
}

/// Reads an `<auth/>`; the authzid is an error when the payload is not base64
/// of UTF-8 (RFC 6120 §6.4.2: `incorrect-encoding`).
pub fn parse_auth(e: &Element) -> Option<Auth> {
    if !e.is(NS_SASL, "auth") {
        return None;
    }
    let text = e.text();
    let text = text.trim();
    let authzid = if text.is_empty() || text == "=" {
        Ok(None)
    } else {
        STANDARD
            .decode(text)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Some)
            .ok_or_else(|| format!("payload `{text}` is not base64 of UTF-8"))
    };
    Some(Auth {
        mechanism: e.attr("mechanism").unwrap_or_default().to_string(),
        authzid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authzid_round_trips() {
        let a = parse_auth(&auth_external(Some("peer.test"))).unwrap();
        assert_eq!(a.mechanism, "EXTERNAL");
        assert_eq!(a.authzid, Ok(Some("peer.test".into())));
        assert_eq!(parse_auth(&auth_external(None)).unwrap().authzid, Ok(None));
        let bad = Element::new(NS_SASL, "auth").with_text("!!");
        assert!(parse_auth(&bad).unwrap().authzid.is_err());
    }

    #[test]
    fn failure_condition_is_read() {
        assert_eq!(
            failure_condition(&failure("invalid-authzid")).as_deref(),
            Some("invalid-authzid")
        );
        assert_eq!(failure_condition(&success()), None);
    }
}
