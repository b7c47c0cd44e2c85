//! Structural matching of a received element against a pattern written as
//! XML: same namespace and name; every attribute of the pattern present
//! with that value; every child of the pattern matched, in order, by a child
//! of the element; the pattern's text (trimmed) equal to the element's.
//! Extra attributes and children are allowed unless `exact`.
//!
//! Values `{any}` match anything present, `{absent}` requires the attribute
//! to be missing, `{capture:NAME}` matches anything and records it (or, if
//! NAME is already known, must equal it).

use std::collections::BTreeMap;

use crate::xml::{Element, NS_DIALBACK, NS_SERVER, NS_STREAMS, NsContext, XmlError};

const ANY: &str = "{any}";
const ABSENT: &str = "{absent}";

/// The namespace context scenario XML is written in: an S2S stream's, so
/// unprefixed names are `jabber:server` and `db:`/`stream:` are bound.
pub fn s2s_context() -> NsContext {
    NsContext::with_default(NS_SERVER)
        .with_prefix("stream", NS_STREAMS)
        .with_prefix("db", NS_DIALBACK)
}

/// Parses scenario XML in the S2S context.
pub fn parse_xml(xml: &str) -> Result<Element, XmlError> {
    Element::parse_in(xml, &s2s_context(), crate::xml::Limits::default())
}

/// Why an element does not match a pattern; `element` is the received
/// element's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("expected <{want_name}> in `{want_ns}`, got <{got_name}> in `{got_ns}`")]
    Name {
        want_name: String,
        want_ns: String,
        got_name: String,
        got_ns: String,
    },
    #[error("<{element}> has {attr}='{value}', expected none")]
    UnwantedAttr {
        element: String,
        attr: String,
        value: String,
    },
    #[error("<{element}> lacks {attr}='{want}'")]
    MissingAttr {
        element: String,
        attr: String,
        want: String,
    },
    #[error("<{element}> has {attr}='{got}', expected '{want}'")]
    AttrValue {
        element: String,
        attr: String,
        got: String,
        want: String,
    },
    #[error("<{element}> has extra attributes (exact match)")]
    ExtraAttrs { element: String },
    #[error("<{element}> has text '{got}', expected '{want}'")]
    Text {
        element: String,
        got: String,
        want: String,
    },
    /// `why` is how the first candidate child failed, if there was one.
    #[error(
        "<{element}> lacks a child <{child}>{}",
        why.as_ref().map(|w| format!(" ({w})")).unwrap_or_default()
    )]
    MissingChild {
        element: String,
        child: String,
        why: Option<Box<Mismatch>>,
    },
    #[error("<{element}> has extra children (exact match)")]
    ExtraChildren { element: String },
}

/// Captured values by name.
pub type Captures = BTreeMap<String, String>;

/// `Ok` with the captures extended, or why the element does not match.
pub fn matches(
    pattern: &Element,
    actual: &Element,
    exact: bool,
    known: &Captures,
) -> Result<Captures, Mismatch> {
    let mut captures = known.clone();
    match_element(pattern, actual, exact, &mut captures)?;
    Ok(captures)
}

fn match_element(
    p: &Element,
    a: &Element,
    exact: bool,
    caps: &mut Captures,
) -> Result<(), Mismatch> {
    let element = || a.name.clone();
    if p.ns != a.ns || p.name != a.name {
        return Err(Mismatch::Name {
            want_name: p.name.clone(),
            want_ns: p.ns.clone(),
            got_name: a.name.clone(),
            got_ns: a.ns.clone(),
        });
    }
    for (k, want) in &p.attrs {
        match (want.as_str(), a.attr(k)) {
            (ABSENT, None) => {}
            (ABSENT, Some(v)) => {
                return Err(Mismatch::UnwantedAttr {
                    element: element(),
                    attr: k.clone(),
                    value: v.to_owned(),
                });
            }
            (_, None) => {
                return Err(Mismatch::MissingAttr {
                    element: element(),
                    attr: k.clone(),
                    want: want.clone(),
                });
            }
            (_, Some(v)) => value(want, v, caps).map_err(|()| Mismatch::AttrValue {
                element: element(),
                attr: k.clone(),
                got: v.to_owned(),
                want: want.clone(),
            })?,
        }
    }
    if exact {
        let wanted = p.attrs.iter().filter(|(_, v)| v != ABSENT).count();
        if a.attrs.len() != wanted {
            return Err(Mismatch::ExtraAttrs { element: element() });
        }
    }
    let want_text = p.text();
    let want_text = want_text.trim();
    if !want_text.is_empty() || exact {
        let got = a.text();
        value(want_text, got.trim(), caps).map_err(|()| Mismatch::Text {
            element: element(),
            got: got.trim().to_owned(),
            want: want_text.to_owned(),
        })?;
    }
    let actual: Vec<&Element> = a.children_elements().collect();
    let mut next = 0;
    for pc in p.children_elements() {
        let mut found = None;
        let mut why = None;
        for (i, ac) in actual.iter().enumerate().skip(next) {
            let mut trial = caps.clone();
            match match_element(pc, ac, exact, &mut trial) {
                Ok(()) => {
                    found = Some((i, trial));
                    break;
                }
                Err(e) => why = why.or(Some(e)),
            }
        }
        let Some((i, trial)) = found else {
            return Err(Mismatch::MissingChild {
                element: element(),
                child: pc.name.clone(),
                why: why.map(Box::new),
            });
        };
        *caps = trial;
        next = i + 1;
    }
    if exact && actual.len() != p.children_elements().count() {
        return Err(Mismatch::ExtraChildren { element: element() });
    }
    Ok(())
}

/// Whether `got` satisfies the pattern value `want`.
fn value(want: &str, got: &str, caps: &mut Captures) -> Result<(), ()> {
    if want == ANY {
        return Ok(());
    }
    if let Some(name) = want
        .strip_prefix("{capture:")
        .and_then(|r| r.strip_suffix('}'))
    {
        return match caps.get(name) {
            Some(v) if v != got => Err(()),
            Some(_) => Ok(()),
            None => {
                caps.insert(name.to_owned(), got.to_owned());
                Ok(())
            }
        };
    }
    if want == got { Ok(()) } else { Err(()) }
}

/// Direct children named in `absent` (local names) that `actual` has.
pub fn present_children<'a>(actual: &'a Element, absent: &[String]) -> Option<&'a Element> {
    actual
        .children_elements()
        .find(|c| absent.contains(&c.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: &str, exact: bool) -> Result<Captures, Mismatch> {
        matches(
            &parse_xml(p).unwrap(),
            &parse_xml(a).unwrap(),
            exact,
            &Captures::new(),
        )
    }

    #[test]
    fn extra_attributes_and_children_are_allowed_unless_exact() {
        let a =
            "<presence from='a@t' to='b@p' id='x'><status>hi</status><c xmlns='urn:c'/></presence>";
        assert!(m("<presence from='a@t'/>", a, false).is_ok());
        assert!(
            m(
                "<presence from='a@t'><status>{any}</status></presence>",
                a,
                false
            )
            .is_ok()
        );
        assert!(m("<presence from='a@t'/>", a, true).is_err());
        assert!(m("<presence type='{absent}'/>", a, false).is_ok());
        assert!(m("<presence id='{absent}'/>", a, false).is_err());
        assert!(m("<presence from='x'/>", a, false).is_err());
        assert!(m("<message/>", a, false).is_err());
    }

    #[test]
    fn namespaces_and_prefixes_resolve() {
        let a = "<db:result from='t' to='p' type='invalid'/>";
        assert!(m("<db:result type='invalid'/>", a, false).is_ok());
        assert!(m("<result xmlns='jabber:server:dialback'/>", a, false).is_ok());
        assert!(m("<result type='invalid'/>", a, false).is_err());
    }

    #[test]
    fn captures_record_and_then_compare() {
        let c = m("<iq id='{capture:id}'/>", "<iq id='42'/>", false).unwrap();
        assert_eq!(c.get("id").map(String::as_str), Some("42"));
        let p = parse_xml("<iq id='{capture:id}'/>").unwrap();
        assert!(matches(&p, &parse_xml("<iq id='42'/>").unwrap(), false, &c).is_ok());
        assert!(matches(&p, &parse_xml("<iq id='43'/>").unwrap(), false, &c).is_err());
    }
}
