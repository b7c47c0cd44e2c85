//! Stream features (RFC 6120 §4.3.2) as plain data: STARTTLS, SASL mechanisms
//! and the dialback feature, built by receiving servers and read by initiating
//! ones.

use crate::dialback;
use crate::xml::{Element, NS_SASL, NS_STREAMS, NS_TLS};

/// What a `<stream:features/>` element offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Features {
    /// `Some(required)` when STARTTLS is offered.
    pub starttls: Option<bool>,
    /// SASL mechanism names, in offer order.
    pub mechanisms: Vec<String>,
    /// A `<mechanisms/>` element without any mechanism: malformed (RFC 6120
    /// §6.4.1 requires at least one), and never written by `to_element`.
    pub empty_mechanisms: bool,
    /// `<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>` (XEP-0220 §2.4).
    pub dialback: bool,
    /// Any other feature, kept as received.
    pub other: Vec<Element>,
}

impl Features {
    pub fn offers_external(&self) -> bool {
        self.mechanisms.iter().any(|m| m == "EXTERNAL")
    }

    /// Reads a `<stream:features/>` element; `None` for anything else.
    pub fn parse(e: &Element) -> Option<Features> {
        if !e.is(NS_STREAMS, "features") {
            return None;
        }
        let mut f = Features::default();
        for child in e.children_elements() {
            if child.is(NS_TLS, "starttls") {
                f.starttls = Some(child.child(NS_TLS, "required").is_some());
            } else if child.is(NS_SASL, "mechanisms") {
                f.mechanisms = child
                    .children_elements()
                    .filter(|m| m.is(NS_SASL, "mechanism"))
                    .map(|m| m.text().trim().to_string())
                    .collect();
                f.empty_mechanisms = f.mechanisms.is_empty();
            } else if child.is(dialback::FEATURE_NS, "dialback") {
                f.dialback = true;
            } else {
                f.other.push(child.clone());
            }
        }
        Some(f)
    }

    /// The element to send. An empty mechanism list is not written at all:
    /// RFC 6120 §6.4.1 requires at least one mechanism in `<mechanisms/>`.
    pub fn to_element(&self) -> Element {
        let mut e = Element::new(NS_STREAMS, "features");
        if let Some(required) = self.starttls {
            let mut tls = Element::new(NS_TLS, "starttls");
            if required {
                tls = tls.with_child(Element::new(NS_TLS, "required"));
            }
            e = e.with_child(tls);
        }
        if !self.mechanisms.is_empty() {
            let mut mechs = Element::new(NS_SASL, "mechanisms");
            for m in &self.mechanisms {
                mechs = mechs.with_child(Element::new(NS_SASL, "mechanism").with_text(m.clone()));
            }
            e = e.with_child(mechs);
        }
        if self.dialback {
            e = e.with_child(
                Element::new(dialback::FEATURE_NS, "dialback")
                    .with_child(Element::new(dialback::FEATURE_NS, "errors")),
            );
        }
        for o in &self.other {
            e = e.with_child(o.clone());
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = Features {
            starttls: Some(true),
            mechanisms: vec!["EXTERNAL".into()],
            dialback: true,
            other: vec![],
            empty_mechanisms: false,
        };
        assert_eq!(Features::parse(&f.to_element()), Some(f.clone()));
        assert!(f.offers_external());
    }

    #[test]
    fn an_empty_mechanisms_element_is_noticed() {
        let e =
            Element::new(NS_STREAMS, "features").with_child(Element::new(NS_SASL, "mechanisms"));
        let f = Features::parse(&e).unwrap();
        assert!(f.empty_mechanisms && f.mechanisms.is_empty());
    }

    #[test]
    fn no_empty_mechanisms_element() {
        let e = Features::default().to_element();
        assert!(e.child(NS_SASL, "mechanisms").is_none());
        assert_eq!(Features::parse(&e), Some(Features::default()));
    }
}
