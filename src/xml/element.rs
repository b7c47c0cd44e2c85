//! The owned element tree and its serialisation.

use std::fmt;

use super::error::{Limits, XmlError};

/// An XML element with its namespace resolved.
///
/// Owned and plain so that it can be stored in transcripts, compared in tests
/// and sent across tasks. Namespace declarations are not attributes here: the
/// namespace lives in `ns`, and the writer re-creates the declarations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Namespace name (empty when the element is in no namespace).
    pub ns: String,
    /// Local name, without prefix.
    pub name: String,
    /// Attributes by qualified name as written (`type`, `xml:lang`), in document
    /// order; `xmlns`/`xmlns:*` declarations excluded. Values are unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements and text, in document order. Adjacent text is merged.
    pub children: Vec<Node>,
}

/// A child of an [`Element`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    /// Character data, unescaped.
    Text(String),
}

impl Element {
    /// An empty element `{ns}name`.
    pub fn new(ns: impl Into<String>, name: impl Into<String>) -> Element {
        Element {
            ns: ns.into(),
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Sets attribute `k` (replacing an existing one of the same name).
    pub fn with_attr(mut self, k: impl Into<String>, v: impl Into<String>) -> Element {
        self.set_attr(k, v);
        self
    }

    /// Appends a child element.
    pub fn with_child(mut self, e: Element) -> Element {
        self.children.push(Node::Element(e));
        self
    }

    /// Appends text (merged with a preceding text node).
    pub fn with_text(mut self, t: impl Into<String>) -> Element {
        self.push_text(t.into());
        self
    }

    /// Sets attribute `k`, replacing an existing one of the same name.
    pub fn set_attr(&mut self, k: impl Into<String>, v: impl Into<String>) {
        let (k, v) = (k.into(), v.into());
        match self.attrs.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => self.attrs.push((k, v)),
        }
    }

    /// Appends text, merging with a preceding text node so that the tree does
    /// not depend on how the text was split on the wire (entities, CDATA, reads).
    pub fn push_text(&mut self, t: String) {
        if t.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(prev)) => prev.push_str(&t),
            _ => self.children.push(Node::Text(t)),
        }
    }

    /// The value of attribute `name` (qualified name as written, e.g. `xml:lang`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child element `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children_elements().find(|e| e.is(ns, name))
    }

    /// The child elements, skipping text.
    pub fn children_elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The concatenated direct text children (not descendants').
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Whether this is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// Parses one complete element, e.g. `<message to='a'><body>hi</body></message>`,
    /// under the same rules as a stream (restricted XML, default [`Limits`]).
    /// Unprefixed names without an `xmlns` are in no namespace (`ns` is empty).
    pub fn parse(xml: &str) -> Result<Element, XmlError> {
        Self::parse_in(xml, &NsContext::default(), Limits::default())
    }

    /// Like [`Element::parse`], but as if inside a stream whose header set up
    /// `ctx` (e.g. default `jabber:server`, `db` bound to dialback).
    pub fn parse_in(xml: &str, ctx: &NsContext, limits: Limits) -> Result<Element, XmlError> {
        super::builder::parse_fragment(xml, ctx, limits)
    }

    /// Serialises this element as it would be written on a stream with
    /// namespace context `ctx`: `xmlns='…'` only where the namespace differs
    /// from the inherited default, and a prefix where `ctx` declares one for
    /// the namespace (so `{jabber:server:dialback}result` becomes `db:result`).
    pub fn to_xml(&self, ctx: &NsContext) -> String {
        let mut out = String::new();
        self.write_xml(ctx, &mut out);
        out
    }

    /// Appends the serialisation of this element to `out` (see [`Element::to_xml`]).
    pub fn write_xml(&self, ctx: &NsContext, out: &mut String) {
        write_element(self, &ctx.default_ns, &ctx.prefixes, out);
    }
}

/// The namespace context elements are written in or parsed under: the default
/// namespace and the prefixes declared by the stream header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NsContext {
    /// The inherited default namespace (`jabber:server` on an S2S stream).
    pub default_ns: String,
    /// Declared prefixes, `(prefix, namespace)`, e.g. `("db", "jabber:server:dialback")`.
    pub prefixes: Vec<(String, String)>,
}

impl NsContext {
    /// A context with default namespace `ns` and no prefixes.
    pub fn with_default(ns: impl Into<String>) -> NsContext {
        NsContext {
            default_ns: ns.into(),
            prefixes: Vec::new(),
        }
    }

    /// Adds a prefix declaration.
    pub fn with_prefix(mut self, prefix: impl Into<String>, ns: impl Into<String>) -> NsContext {
        self.prefixes.push((prefix.into(), ns.into()));
        self
    }

    /// The prefix declared for `ns`, if any (the last declaration wins, as in XML).
    pub fn prefix_for(&self, ns: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .rev()
            .find(|(_, n)| n == ns)
            .map(|(p, _)| p.as_str())
    }
}

/// Displays the element with no inherited context (every namespace explicit).
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xml(&NsContext::default()))
    }
}

fn write_element(e: &Element, default_ns: &str, prefixes: &[(String, String)], out: &mut String) {
    // Prefer the inherited default namespace, then a declared prefix, and only
    // then a fresh `xmlns`, which also becomes the children's default.
    let prefix = if e.ns == default_ns {
        None
    } else {
        prefixes
            .iter()
            .rev()
            .find(|(_, n)| *n == e.ns)
            .map(|(p, _)| p.as_str())
    };
    let declare = e.ns != default_ns && prefix.is_none();
    let child_default = if declare { e.ns.as_str() } else { default_ns };

    out.push('<');
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    out.push_str(&e.name);
    if declare {
        out.push_str(" xmlns='");
        escape_attr(&e.ns, out);
        out.push('\'');
    }
    for (k, v) in &e.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("='");
        escape_attr(v, out);
        out.push('\'');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in &e.children {
        match child {
            Node::Element(c) => write_element(c, child_default, prefixes, out),
            Node::Text(t) => escape_text(t, out),
        }
    }
    out.push_str("</");
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    out.push_str(&e.name);
    out.push('>');
}

/// Escapes character data. `>` is escaped too so that `]]>` can never appear,
/// and `\r` as a character reference because a literal one would be
/// normalised away by the receiving parser (XML 1.0 §2.11).
pub fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Escapes an attribute value for single or double quotes. Tab, CR and LF are
/// written as character references because attribute-value normalisation
/// (XML 1.0 §3.3.3) would otherwise turn them into spaces.
pub fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}
