//! STARTTLS vocabulary (RFC 6120 §5.4).

use crate::xml::{Element, NS_TLS};

pub fn starttls() -> Element {
    Element::new(NS_TLS, "starttls")
}

pub fn proceed() -> Element {
    Element::new(NS_TLS, "proceed")
}

/// Sent before the receiving entity closes the stream (RFC 6120 §5.4.2.2).
pub fn failure() -> Element {
    Element::new(NS_TLS, "failure")
}

pub fn is_starttls(e: &Element) -> bool {
    e.is(NS_TLS, "starttls")
}

pub fn is_proceed(e: &Element) -> bool {
    e.is(NS_TLS, "proceed")
}

pub fn is_failure(e: &Element) -> bool {
    e.is(NS_TLS, "failure")
}
