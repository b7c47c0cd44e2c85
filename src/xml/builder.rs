//! From quick-xml's flat event stream to XMPP stream events.
//!
//! quick-xml is a pull tokenizer: it reports tags, text and references but
//! leaves policy to us. [`TreeBuilder`] is where RFC 6120's rules live, in one
//! place, so that the async stream reader and the synchronous
//! [`Element::parse`](super::Element::parse) can never disagree:
//! restricted XML (§11.1), namespace checks (§4.8, §11.2), the stream root,
//! depth limits, and the assembly of top-level elements.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event as QEvent};
use quick_xml::name::{Namespace, NamespaceResolver, PrefixDeclaration, ResolveResult};

use super::element::{Element, Node, NsContext};
use super::error::{Limits, XmlError, from_quick_xml};
use super::header::StreamHeader;
use super::{Event, NS_STREAMS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A whole stream: header, top-level elements, end.
    Stream,
    /// One element on its own (for `Element::parse`).
    Fragment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the root (stream header, or the fragment's element). The XML
    /// declaration is only legal as the very first thing.
    Prolog { decl_allowed: bool },
    /// Inside the root.
    Open,
    /// The root has been closed; only whitespace may follow.
    Ended,
}

pub(crate) struct TreeBuilder {
    mode: Mode,
    limits: Limits,
    state: State,
    /// The elements currently open inside the root; `stack[0]` is the top-level one.
    stack: Vec<Element>,
    /// An event that must be delivered after the one just returned (a
    /// self-closed `<stream:stream/>` is a header *and* an end).
    queued: Option<Event>,
    /// The fragment's element, once complete.
    result: Option<Element>,
}

impl TreeBuilder {
    pub(crate) fn stream(limits: Limits) -> TreeBuilder {
        TreeBuilder::new(Mode::Stream, limits)
    }

    fn new(mode: Mode, limits: Limits) -> TreeBuilder {
        TreeBuilder {
            mode,
            limits,
            state: State::Prolog { decl_allowed: true },
            stack: Vec::new(),
            queued: None,
            result: None,
        }
    }

    /// Whether the next thing on the wire is a top-level child of an open
    /// stream (where whitespace is a keep-alive).
    pub(crate) fn at_stream_level(&self) -> bool {
        self.mode == Mode::Stream && self.state == State::Open && self.stack.is_empty()
    }

    pub(crate) fn take_queued(&mut self) -> Option<Event> {
        self.queued.take()
    }

    /// Consumes one quick-xml event. `resolver` must be the reader's resolver
    /// right after it produced `ev` (the element's own declarations in scope).
    pub(crate) fn feed(
        &mut self,
        ev: QEvent<'_>,
        resolver: &NamespaceResolver,
    ) -> Result<Option<Event>, XmlError> {
        let in_prolog = matches!(self.state, State::Prolog { .. });
        let out = match ev {
            QEvent::Decl(d) => {
                if self.state != (State::Prolog { decl_allowed: true }) {
                    return Err(XmlError::RestrictedXml(
                        "XML declaration (a processing instruction) after the start of the stream"
                            .into(),
                    ));
                }
                check_decl(&d)?;
                Ok(None)
            }
            QEvent::DocType(_) => Err(XmlError::RestrictedXml(
                "document type declaration (DTD)".into(),
            )),
            QEvent::Comment(_) => Err(XmlError::RestrictedXml("comment".into())),
            QEvent::PI(pi) => Err(XmlError::RestrictedXml(format!(
                "processing instruction <?{}?>",
                pi.target()
            ))),
            QEvent::GeneralRef(r) => {
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => self.text(Cow::Owned(c.to_string())),
                        _ => Err(XmlError::NotWellFormed(format!(
                            "invalid character reference &{};",
                            r.as_ref()
                        ))),
                    }
                } else {
                    match predefined_entity(r.as_ref()) {
                        Some(s) => self.text(Cow::Borrowed(s)),
                        None => Err(XmlError::RestrictedXml(format!(
                            "entity reference &{}; is not predefined",
                            r.as_ref()
                        ))),
                    }
                }
            }
            QEvent::Text(t) => self.text(t.xml10_content()),
            QEvent::CData(c) => {
                // CDATA is allowed by RFC 6120; it is just text with other quoting.
                if self.stack.is_empty() {
                    Err(XmlError::BadFormat("CDATA outside a stanza".into()))
                } else {
                    self.text(c.xml10_content())
                }
            }
            QEvent::Start(e) => self.start(&e, resolver, false),
            QEvent::Empty(e) => self.start(&e, resolver, true),
            QEvent::End(_) => Ok(self.end()),
            QEvent::Eof => self.eof(),
        };
        // Anything at all (even whitespace) ends the window for the declaration.
        if in_prolog && let State::Prolog { decl_allowed } = &mut self.state {
            *decl_allowed = false;
        }
        out
    }

    fn text(&mut self, s: Cow<'_, str>) -> Result<Option<Event>, XmlError> {
        check_chars(&s)?;
        if let Some(top) = self.stack.last_mut() {
            top.push_text(s.into_owned());
            return Ok(None);
        }
        let ws = s.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        match (self.state, ws) {
            (_, true) if s.is_empty() => Ok(None),
            (State::Open, true) if self.mode == Mode::Stream => Ok(Some(Event::Whitespace)),
            (_, true) => Ok(None),
            (State::Open, false) if self.mode == Mode::Stream => Err(XmlError::BadFormat(
                "character data directly inside <stream:stream>".into(),
            )),
            (_, false) => Err(XmlError::NotWellFormed(
                "character data outside the root element".into(),
            )),
        }
    }

    fn start(
        &mut self,
        e: &BytesStart<'_>,
        resolver: &NamespaceResolver,
        empty: bool,
    ) -> Result<Option<Event>, XmlError> {
        match (self.state, self.mode) {
            (State::Ended, _) => {
                return Err(XmlError::NotWellFormed(
                    "element after the end of the root element".into(),
                ));
            }
            (State::Prolog { .. }, Mode::Stream) => {
                let header = parse_header(e, resolver)?;
                self.state = State::Open;
                if empty {
                    self.state = State::Ended;
                    self.queued = Some(Event::End);
                }
                return Ok(Some(Event::Header(header)));
            }
            _ => {}
        }
        self.state = State::Open;
        if self.stack.len() >= self.limits.max_depth {
            return Err(XmlError::PolicyViolation(format!(
                "element nesting deeper than {} levels",
                self.limits.max_depth
            )));
        }
        let el = parse_element(e, resolver)?;
        if empty {
            Ok(self.close(el))
        } else {
            self.stack.push(el);
            Ok(None)
        }
    }

    /// quick-xml has already checked that the end tag matches its start tag.
    fn end(&mut self) -> Option<Event> {
        match self.stack.pop() {
            Some(el) => self.close(el),
            None => {
                // The root's end tag (only reachable in stream mode: in fragment
                // mode the root is on the stack).
                self.state = State::Ended;
                Some(Event::End)
            }
        }
    }

    fn close(&mut self, el: Element) -> Option<Event> {
        if let Some(parent) = self.stack.last_mut() {
            parent.children.push(Node::Element(el));
            return None;
        }
        match self.mode {
            Mode::Stream => Some(Event::Element(el)),
            Mode::Fragment => {
                self.result = Some(el);
                self.state = State::Ended;
                None
            }
        }
    }

    fn eof(&mut self) -> Result<Option<Event>, XmlError> {
        match self.mode {
            // The peer hung up; a partial stanza is dropped (and is what the
            // caller's transcript will show as missing).
            Mode::Stream => Ok(Some(Event::Eof)),
            Mode::Fragment if self.stack.is_empty() && self.result.is_some() => Ok(None),
            Mode::Fragment => Err(XmlError::NotWellFormed("incomplete element".into())),
        }
    }
}

/// Parses a complete element under `ctx` (see [`Element::parse_in`]).
pub(crate) fn parse_fragment(
    xml: &str,
    ctx: &NsContext,
    limits: Limits,
) -> Result<Element, XmlError> {
    if xml.len() > limits.max_stanza_bytes {
        return Err(XmlError::PolicyViolation(format!(
            "element exceeds {} bytes",
            limits.max_stanza_bytes
        )));
    }
    let mut reader = NsReader::from_str(xml);
    // Pre-bind the context's namespaces at nesting level 0, where they outlive
    // every element, like declarations on a stream header.
    let r = reader.resolver_mut();
    if !ctx.default_ns.is_empty() {
        r.add(PrefixDeclaration::Default, Namespace(&ctx.default_ns))
            .map_err(|e| XmlError::InvalidNamespace(e.to_string()))?;
    }
    for (p, ns) in &ctx.prefixes {
        r.add(PrefixDeclaration::Named(p), Namespace(ns))
            .map_err(|e| XmlError::InvalidNamespace(e.to_string()))?;
    }
    let mut builder = TreeBuilder::new(Mode::Fragment, limits);
    loop {
        let ev = reader.read_event().map_err(|e| from_quick_xml(&e))?;
        let eof = matches!(ev, QEvent::Eof);
        builder.feed(ev, reader.resolver())?;
        if eof {
            break;
        }
    }
    builder
        .result
        .ok_or_else(|| XmlError::NotWellFormed("no element".into()))
}

fn check_decl(d: &quick_xml::events::BytesDecl<'_>) -> Result<(), XmlError> {
    let version = d.version().map_err(|e| from_quick_xml(&e))?;
    if version != "1.0" {
        return Err(XmlError::NotWellFormed(format!(
            "XML version {version}; XMPP uses XML 1.0"
        )));
    }
    match d.encoding() {
        None => Ok(()),
        Some(Ok(enc)) if enc.eq_ignore_ascii_case("utf-8") => Ok(()),
        Some(Ok(enc)) => Err(XmlError::UnsupportedEncoding(format!(
            "declared encoding {enc}; XMPP requires UTF-8"
        ))),
        Some(Err(e)) => Err(XmlError::NotWellFormed(e.to_string())),
    }
}

struct Attrs {
    /// Every attribute, namespace declarations included.
    all: Vec<(String, String)>,
    /// `xmlns` (prefix `""`) and `xmlns:p` declarations.
    decls: Vec<(String, String)>,
}

/// Reads, unescapes and checks the attributes of a start tag.
fn attributes(e: &BytesStart<'_>, resolver: &NamespaceResolver) -> Result<Attrs, XmlError> {
    let mut out = Attrs {
        all: Vec::new(),
        decls: Vec::new(),
    };
    // `attributes()` checks for duplicates, which XML forbids (WFC: Unique Att Spec).
    for a in e.attributes() {
        let a = a.map_err(|err| XmlError::NotWellFormed(err.to_string()))?;
        let key = a.key.into_inner();
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| from_quick_xml(&err))?;
        check_chars(&value)?;
        match a.key.as_namespace_binding() {
            Some(PrefixDeclaration::Default) => out.decls.push((String::new(), value.to_string())),
            Some(PrefixDeclaration::Named(p)) => out.decls.push((p.to_owned(), value.to_string())),
            None => {
                if let Some(p) = a.key.prefix()
                    && p.into_inner() != "xml"
                    && let (ResolveResult::Unknown(p), _) = resolver.resolve_attribute(a.key)
                {
                    return Err(XmlError::BadNamespacePrefix(format!(
                        "attribute {key} uses undeclared prefix '{p}'"
                    )));
                }
            }
        }
        out.all.push((key.to_owned(), value.into_owned()));
    }
    Ok(out)
}

fn resolve_name(
    e: &BytesStart<'_>,
    resolver: &NamespaceResolver,
) -> Result<(String, String), XmlError> {
    let (res, local) = resolver.resolve_element(e.name());
    let ns = match res {
        ResolveResult::Bound(ns) => ns.into_inner().to_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(p) => {
            return Err(XmlError::BadNamespacePrefix(format!(
                "element <{}> uses undeclared prefix '{p}'",
                e.name().into_inner()
            )));
        }
    };
    Ok((ns, local.into_inner().to_owned()))
}

fn parse_element(e: &BytesStart<'_>, resolver: &NamespaceResolver) -> Result<Element, XmlError> {
    let (ns, name) = resolve_name(e, resolver)?;
    let attrs = attributes(e, resolver)?;
    let mut el = Element::new(ns, name);
    el.attrs = attrs
        .all
        .into_iter()
        .filter(|(k, _)| k != "xmlns" && !k.starts_with("xmlns:"))
        .collect();
    Ok(el)
}

fn parse_header(
    e: &BytesStart<'_>,
    resolver: &NamespaceResolver,
) -> Result<StreamHeader, XmlError> {
    let (ns, name) = resolve_name(e, resolver)?;
    if ns != NS_STREAMS || name != "stream" {
        return Err(XmlError::InvalidNamespace(format!(
            "stream root is {{{ns}}}{name}, expected {{{NS_STREAMS}}}stream"
        )));
    }
    let attrs = attributes(e, resolver)?;
    let get = |k: &str| {
        attrs
            .all
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let prefix = e.name().prefix().map(|p| p.into_inner());
    Ok(StreamHeader {
        from: get("from"),
        to: get("to"),
        id: get("id"),
        version: get("version"),
        lang: get("xml:lang"),
        default_ns: attrs
            .decls
            .iter()
            .find(|(p, _)| p.is_empty())
            .map(|(_, ns)| ns.clone())
            .unwrap_or_default(),
        stream_ns_ok: prefix == Some("stream"),
        prefixes: attrs
            .decls
            .iter()
            .filter(|(p, _)| !p.is_empty())
            .cloned()
            .collect(),
        attrs: attrs.all,
    })
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

/// XML 1.0 `Char` production: no C0 controls other than TAB, LF, CR, and not
/// U+FFFE/U+FFFF (surrogates cannot occur in a Rust `str`). quick-xml does not
/// check this, and a NUL in a stanza is exactly what a fuzzing peer sends.
fn check_chars(s: &str) -> Result<(), XmlError> {
    match s.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        Some(c) => Err(XmlError::NotWellFormed(format!(
            "character U+{:04X} is not allowed in XML",
            c as u32
        ))),
        None => Ok(()),
    }
}
