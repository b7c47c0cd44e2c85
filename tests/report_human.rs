//! The human-readable report (`report.html`, `report.md`) on hand-built
//! reports and, when present, on `reports/reference/report.json`.
//!
//! The HTML is checked as XML with quick-xml (the renderer writes markup that
//! is both HTML5 and well-formed XML), then as a small tree: anchors, links,
//! grid shape, absence of external references, escaping of hostile data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use s2spec::partner::Negotiation;
use s2spec::report::{
    CaseResult, Expected, Observed, Report, RunInfo, Verdict, case_anchor, html_string,
    markdown_string, read_json, write_html, write_markdown,
};
use s2spec::stream::{Dir, Entry, EntryKind};

// ---------------------------------------------------------------- reports

fn run_info() -> RunInfo {
    RunInfo {
        s2spec_version: "0.1.0".into(),
        target: "reference".into(),
        faults: vec!["no-sasl".into()],
        policy: "lync".into(),
        started: "2026-01-02T03:04:05Z".into(),
        finished: "2026-01-02T03:04:17Z".into(),
        duration_ms: 12_345,
        transcripts: None,
        selection: None,
        interrupted: false,
    }
}

fn entry(i: usize, text: &str) -> Entry {
    Entry {
        at: Duration::from_millis(i as u64 * 7),
        stream: 1,
        dir: if i.is_multiple_of(2) {
            Dir::Sent
        } else {
            Dir::Received
        },
        tls: i > 1,
        kind: if i == 0 {
            EntryKind::Note
        } else {
            EntryKind::Xml
        },
        text: text.into(),
    }
}

fn case(id: &str, verdict: Verdict, expected: Option<&str>, observed: Option<&str>) -> CaseResult {
    CaseResult {
        id: id.into(),
        family: if id.starts_with("matrix/") {
            "plain".into()
        } else {
            "scenario".into()
        },
        description: format!("checks {id}"),
        verdict,
        expected: expected.map(|o| Expected {
            outcome: o.parse().unwrap(),
            tls: o != "TCP Dialback",
            rationale: format!("the oracle wants {o}"),
            refs: vec!["SPEC §4.3".into(), "XEP-0220 §2".into()],
            source: None,
            alternatives: Vec::new(),
        }),
        observed: observed.map(|o| Observed {
            outcome: o.parse().unwrap(),
            tls: o != "TCP Dialback",
            facts: vec![format!("fact about {o}")],
        }),
        messages: match verdict {
            Verdict::Pass => vec![],
            v => vec![format!("{v}: something about {id}\nsecond line")],
        },
        deviations: Vec::new(),
        duration_ms: 42,
        transcript: vec![
            entry(0, "connected to 127.0.0.1:5269"),
            entry(1, "<stream:features><starttls/></stream:features>"),
            entry(2, &format!("<message id='{id}'/>")),
        ],
    }
}

const SASL: &str = "SASL over TLS";
const TLSDB: &str = "TLS Dialback";
const TCPDB: &str = "TCP Dialback";
const REFUSED: &str = "refused";

/// Every verdict and every section of the page, and one malformed matrix id.
fn sample() -> Report {
    use Verdict::*;
    let cases = vec![
        case(
            "matrix/in/t-RR1/p-RR1/valid/srv",
            Pass,
            Some(SASL),
            Some(SASL),
        ),
        case(
            "matrix/in/t-RR1/p-NN1/valid/srv",
            Pass,
            Some(REFUSED),
            Some(REFUSED),
        ),
        case(
            "matrix/in/t-NN1/p-NN1/valid/srv",
            Fail,
            Some(TCPDB),
            Some(REFUSED),
        ),
        case(
            "matrix/in/t-OO1/p-OO1/valid/srv",
            NonStrict,
            Some(SASL),
            Some(SASL),
        ),
        case("matrix/in/t-OO1/p-ON1/valid/srv", Error, Some(TLSDB), None),
        case("matrix/in/t-OO1/p-OO0/valid/srv", NotApplicable, None, None),
        case(
            "matrix/out/t-OR1/p-OO1/valid/srv",
            Pass,
            Some(SASL),
            Some(SASL),
        ),
        case(
            "matrix/in/t-OO1/p-OO1/expired/srv",
            Pass,
            Some(TLSDB),
            Some(TLSDB),
        ),
        case(
            "matrix/in/t-OO1/p-OO1/cn-only/srv",
            Fail,
            Some(TLSDB),
            Some(SASL),
        ),
        case(
            "matrix/in/t-OO1/p-OO1/valid/nxdomain",
            Fail,
            Some(REFUSED),
            Some(TLSDB),
        ),
        case(
            "matrix/in/t-none/p-OO1/valid/srv",
            Pass,
            Some(REFUSED),
            Some(REFUSED),
        ),
        case(
            "config/NR0",
            Pass,
            Some("configuration refused"),
            Some("configuration refused"),
        ),
        case(
            "rfc6120/5.4.3.3/starttls-pipelining",
            Fail,
            Some(REFUSED),
            Some(TLSDB),
        ),
        case(
            "xep0220/2.1/db-result-before-tls",
            Pass,
            Some(REFUSED),
            Some(REFUSED),
        ),
        case(
            "matrix/in/t-XX9/p-OO1/valid/srv",
            Pass,
            Some(SASL),
            Some(SASL),
        ),
    ];
    Report::new(run_info(), cases)
}

const HOSTILE: &str = "<script>alert(\"x\")</script>'\u{1b}[31m\u{202e}|pipe|`` ```";

/// Peer-controlled strings everywhere a string goes.
fn hostile() -> Report {
    let mut c = case(
        "matrix/in/t-RR1/p-RR1/valid/srv",
        Verdict::Fail,
        Some(SASL),
        // Outcomes are typed (a phrase no outcome names does not load), so
        // the peer-controlled strings travel in the facts and messages.
        Some(REFUSED),
    );
    c.description = HOSTILE.into();
    c.family = HOSTILE.into();
    c.messages = vec![HOSTILE.into()];
    if let Some(o) = c.observed.as_mut() {
        o.facts = vec![HOSTILE.into()];
    }
    if let Some(e) = c.expected.as_mut() {
        e.rationale = HOSTILE.into();
        e.refs = vec![HOSTILE.into()];
    }
    c.transcript = vec![
        entry(1, HOSTILE),
        entry(
            2,
            "</pre></details><img src=x onerror=alert(1)>\u{0}\u{7f}\u{85}\u{fffe}",
        ),
    ];
    let mut s = case(
        &format!("rfc6120/{HOSTILE}/\" onmouseover=\"x"),
        Verdict::Error,
        None,
        None,
    );
    s.messages = vec![HOSTILE.into()];
    let mut run = run_info();
    run.target = HOSTILE.into();
    run.faults = vec![HOSTILE.into()];
    Report::new(run, vec![c, s])
}

fn reference() -> Option<Report> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/reference/report.json");
    if !path.exists() {
        return None;
    }
    Some(read_json(&path).expect("reference report reads"))
}

// ---------------------------------------------------------------- a tiny DOM

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Child>,
}

#[derive(Debug)]
enum Child {
    El(Node),
    Text(String),
}

impl Node {
    fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.children {
            match c {
                Child::El(n) => s.push_str(&n.text()),
                Child::Text(t) => s.push_str(t),
            }
        }
        s
    }

    fn all<'a>(&'a self, out: &mut Vec<&'a Node>) {
        out.push(self);
        for c in &self.children {
            if let Child::El(n) = c {
                n.all(out);
            }
        }
    }

    fn descendants(&self) -> Vec<&Node> {
        let mut v = Vec::new();
        self.all(&mut v);
        v
    }

    fn elements(&self, name: &str) -> Vec<&Node> {
        self.descendants()
            .into_iter()
            .filter(|n| n.name == name)
            .collect()
    }

    fn children_named(&self, name: &str) -> Vec<&Node> {
        self.children
            .iter()
            .filter_map(|c| match c {
                Child::El(n) if n.name == name => Some(n),
                _ => None,
            })
            .collect()
    }

    fn class(&self) -> &str {
        self.attrs.get("class").map_or("", String::as_str)
    }
}

const VOID: [&str; 6] = ["meta", "br", "hr", "img", "input", "link"];

fn attrs(e: &BytesStart) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.expect("attribute");
            (
                a.key.as_ref().to_string(),
                a.normalized_value(XmlVersion::Implicit1_0)
                    .expect("attribute value")
                    .into_owned(),
            )
        })
        .collect()
}

/// Parses the page as XML; panics on anything not well-formed, on a void
/// element written with an end tag or a non-void one self-closed (both
/// wrong in HTML5).
fn parse_html(html: &str) -> Node {
    assert!(html.starts_with("<!DOCTYPE html>\n"), "HTML5 doctype first");
    let mut reader = Reader::from_str(html);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let event = reader.read_event().unwrap_or_else(|e| {
            let at = reader.buffer_position() as usize;
            let from = at.saturating_sub(200);
            panic!(
                "not well-formed at {at}: {e}: …{}",
                &html[from..at.min(html.len())]
            )
        });
        match event {
            Event::Start(e) => {
                let name = e.name().as_ref().to_string();
                assert!(!VOID.contains(&name.as_str()), "<{name}> must self-close");
                stack.push(Node {
                    name,
                    attrs: attrs(&e),
                    children: vec![],
                });
            }
            Event::Empty(e) => {
                let name = e.name().as_ref().to_string();
                assert!(
                    VOID.contains(&name.as_str()),
                    "<{name}/> is not a void element"
                );
                let node = Node {
                    name,
                    attrs: attrs(&e),
                    children: vec![],
                };
                stack.last_mut().unwrap().children.push(Child::El(node));
            }
            Event::End(_) => {
                let node = stack.pop().expect("open element");
                stack
                    .last_mut()
                    .expect("parent")
                    .children
                    .push(Child::El(node));
            }
            Event::Text(t) => {
                let t = t.xml10_content().into_owned();
                stack.last_mut().unwrap().children.push(Child::Text(t));
            }
            Event::GeneralRef(r) => {
                let s = r.as_ref().to_string();
                let t = quick_xml::escape::unescape(&format!("&{s};"))
                    .expect("known entity")
                    .into_owned();
                stack.last_mut().unwrap().children.push(Child::Text(t));
            }
            Event::CData(_) => panic!("no CDATA in HTML"),
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut root = stack.pop().unwrap();
    let mut html_nodes: Vec<Node> = root
        .children
        .drain(..)
        .filter_map(|c| match c {
            Child::El(n) => Some(n),
            Child::Text(t) => {
                assert!(t.trim().is_empty(), "text outside <html>: {t:?}");
                None
            }
        })
        .collect();
    assert_eq!(html_nodes.len(), 1, "one root element");
    let html_node = html_nodes.pop().unwrap();
    assert_eq!(html_node.name, "html");
    html_node
}

/// The checks every page must pass; returns the parsed tree.
fn check_page(html: &str) -> Node {
    let root = parse_html(html);
    let nodes = root.descendants();

    // Unique, non-empty, whitespace-free ids.
    let mut ids = BTreeSet::new();
    for n in &nodes {
        if let Some(id) = n.attrs.get("id") {
            assert!(
                !id.is_empty() && !id.contains(char::is_whitespace),
                "bad id {id:?}"
            );
            assert!(ids.insert(id.clone()), "duplicate id {id:?}");
        }
    }
    // Every link is internal and resolves.
    for n in &nodes {
        if let Some(href) = n.attrs.get("href") {
            let target = href
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("external link {href:?}"));
            assert!(ids.contains(target), "link {href:?} resolves to no id");
        }
        // No external resources of any kind.
        for a in ["src", "srcset", "action", "data", "poster", "background"] {
            assert!(!n.attrs.contains_key(a), "<{}> has {a}=", n.name);
        }
        assert!(
            !n.attrs.keys().any(|k| k.starts_with("on")),
            "<{}> has an event handler",
            n.name
        );
        assert!(
            !matches!(
                n.name.as_str(),
                "link" | "img" | "iframe" | "object" | "embed" | "base" | "form"
            ),
            "<{}> element",
            n.name
        );
    }
    let style = root.elements("style");
    assert_eq!(style.len(), 1, "one inline stylesheet");
    let css = style[0].text();
    assert!(
        !css.contains("url(") && !css.contains("@import"),
        "CSS loads nothing"
    );
    let scripts = root.elements("script");
    assert!(scripts.len() <= 1, "at most the one inline script");
    for s in scripts {
        assert!(s.attrs.is_empty());
        assert!(!s.text().contains("http"), "script fetches nothing");
    }
    let head = &root.children_named("head")[0];
    assert_eq!(
        head.children_named("meta")[0]
            .attrs
            .get("charset")
            .map(String::as_str),
        Some("utf-8")
    );
    assert_eq!(head.children_named("title").len(), 1);
    root
}

/// The grid tables of the page, by `data-direction`.
fn grids(root: &Node) -> BTreeMap<String, &Node> {
    root.elements("table")
        .into_iter()
        .filter(|t| t.class() == "grid")
        .map(|t| (t.attrs["data-direction"].clone(), t))
        .collect()
}

/// Header codes and body rows (row header code, cells) of a grid.
fn grid_shape(table: &Node) -> (Vec<String>, Vec<(String, Vec<&Node>)>) {
    let head = &table.children_named("thead")[0].children_named("tr")[0];
    let cols: Vec<String> = head
        .children_named("th")
        .iter()
        .map(|th| th.text())
        .collect();
    let rows = table.children_named("tbody")[0]
        .children_named("tr")
        .into_iter()
        .map(|tr| {
            let th = tr.children_named("th");
            assert_eq!(th.len(), 1, "one row header");
            (th[0].text(), tr.children_named("td"))
        })
        .collect();
    (cols, rows)
}

fn codes() -> Vec<String> {
    Negotiation::all().map(|n| n.code()).collect()
}

fn find_by_id<'a>(root: &'a Node, id: &str) -> &'a Node {
    root.descendants()
        .into_iter()
        .find(|n| n.attrs.get("id").map(String::as_str) == Some(id))
        .unwrap_or_else(|| panic!("no element with id {id:?}"))
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("s2spec-human-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

// ---------------------------------------------------------------- HTML

#[test]
fn html_is_well_formed_self_contained_and_every_link_resolves() {
    let report = sample();
    let html = html_string(&report);
    let root = check_page(&html);
    // Nothing in this report names a URL, so none may appear at all.
    assert!(!html.contains("http:") && !html.contains("https:"));
    assert!(!html.contains("<link"));
    // Every case has its anchor, whatever its verdict or section.
    for c in &report.cases {
        find_by_id(&root, &case_anchor(&c.id));
    }
}

#[test]
fn grid_has_a_row_per_target_present_and_18_peer_columns() {
    let html = html_string(&sample());
    let root = check_page(&html);
    let grids = grids(&root);
    assert_eq!(grids.keys().collect::<Vec<_>>(), ["in", "out"]);

    let (cols, rows) = grid_shape(grids["in"]);
    assert_eq!(cols.len(), 19, "corner + 18 peers");
    assert_eq!(cols[1..], codes()[..], "peer columns in SPEC §4 order");
    let targets: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    // Targets in SPEC §4's row order; the malformed t-XX9 is not a row.
    assert_eq!(targets, ["RR1", "OO1", "NN1"]);
    for (_, cells) in &rows {
        assert_eq!(cells.len(), 18);
    }

    // RR1 × RR1: a passing SASL cell linking to its case.
    let cell = rows[0].1[0];
    assert_eq!(cell.class(), "v-pass");
    assert_eq!(cell.text(), "SASL");
    let a = &cell.children_named("a")[0];
    assert_eq!(
        a.attrs["href"],
        format!("#{}", case_anchor("matrix/in/t-RR1/p-RR1/valid/srv"))
    );
    let col = |code: &str| codes().iter().position(|c| c == code).unwrap();
    // RR1 × NN1: refused.
    assert_eq!(rows[0].1[col("NN1")].text(), "—");
    // NN1 × NN1: fail, observed refused, expected TCP Dialback.
    let nn1 = rows[2].1[col("NN1")];
    assert_eq!(nn1.class(), "v-fail");
    assert_eq!(nn1.text(), "—exp. TCP-DB");
    // OO1 row: non-strict, error, not-applicable; missing cells are grey dots.
    let oo1 = &rows[1].1;
    assert_eq!(oo1[col("OO1")].class(), "v-non-strict");
    assert_eq!(oo1[col("ON1")].class(), "v-error");
    assert_eq!(oo1[col("ON1")].text(), "errorexp. TLS-DB");
    assert_eq!(oo1[col("OO0")].class(), "v-not-applicable");
    assert_eq!(oo1[col("OO0")].text(), "n/a");
    assert_eq!(oo1[col("RR1")].class(), "missing");

    let (_, out_rows) = grid_shape(grids["out"]);
    assert_eq!(out_rows.len(), 1);
    assert_eq!(out_rows[0].0, "OR1");
}

#[test]
fn certificate_dns_scenario_and_leftover_sections() {
    let report = sample();
    let html = html_string(&report);
    let root = check_page(&html);
    let var: Vec<&Node> = root
        .elements("table")
        .into_iter()
        .filter(|t| t.class() == "var")
        .collect();
    assert_eq!(var.len(), 2, "one certificate and one DNS table (inbound)");
    let cert_head: Vec<String> = var[0].children_named("thead")[0].children_named("tr")[0]
        .children_named("th")
        .iter()
        .map(|t| t.text())
        .collect();
    // Baseline first, then the variants present in SPEC §5 order.
    assert_eq!(cert_head, ["target", "peer", "valid", "expired", "cn-only"]);
    let dns_head: Vec<String> = var[1].children_named("thead")[0].children_named("tr")[0]
        .children_named("th")
        .iter()
        .map(|t| t.text())
        .collect();
    assert_eq!(dns_head, ["target", "peer", "srv", "nxdomain"]);

    let section = |id: &str| find_by_id(&root, id).text();
    assert!(section("strangers").contains("matrix/in/t-none/p-OO1/valid/srv"));
    assert!(section("config").contains("config/NR0"));
    assert!(section("other-matrix").contains("matrix/in/t-XX9/p-OO1/valid/srv"));
    let scenarios = find_by_id(&root, "scenarios");
    let specs: Vec<String> = scenarios
        .children_named("h3")
        .iter()
        .map(|h| h.text())
        .collect();
    assert_eq!(specs.len(), 2);
    assert!(specs[0].starts_with("rfc6120") && specs[0].contains("1 fail"));
    assert!(specs[1].starts_with("xep0220") && specs[1].contains("1 pass"));

    // Each non-passing case has an open detail with requirement, observation,
    // messages and the whole transcript.
    let problems = find_by_id(&root, "problems");
    let articles = problems.elements("article");
    let not_passing = report.cases.iter().filter(|c| c.verdict != Verdict::Pass);
    assert_eq!(articles.len(), not_passing.clone().count());
    for c in not_passing {
        let art = find_by_id(&root, &case_anchor(&c.id));
        assert_eq!(art.name, "article");
        let t = art.text();
        assert!(t.contains(&c.description));
        for m in &c.messages {
            assert!(t.contains(m.as_str()), "message of {}", c.id);
        }
        if let Some(e) = &c.expected {
            assert!(t.contains(&e.rationale) && t.contains("XEP-0220 §2"));
        }
        if let Some(o) = &c.observed {
            assert!(t.contains(&o.facts[0]));
        }
        for e in &c.transcript {
            assert!(t.contains(&s2spec::report::transcript_line(e)));
        }
        let details = art.elements("details");
        assert_eq!(details[0].attrs.get("open").map(String::as_str), Some(""));
    }
    // Passing cases are collapsed details with their transcript.
    let pass = find_by_id(&root, &case_anchor("matrix/in/t-RR1/p-RR1/valid/srv"));
    assert_eq!(pass.name, "details");
    assert!(!pass.attrs.contains_key("open"));
    assert!(
        pass.text()
            .contains("<message id='matrix/in/t-RR1/p-RR1/valid/srv'/>")
    );
}

#[test]
fn hostile_strings_are_escaped_in_html() {
    let report = hostile();
    let html = html_string(&report);
    let root = check_page(&html);
    assert_eq!(
        root.elements("script").len(),
        1,
        "only the page's own script"
    );
    assert!(root.elements("img").is_empty());
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img"));
    for c in [
        '\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{202e}', '\u{fffe}',
    ] {
        assert!(!html.contains(c), "raw {c:?} in the page");
    }
    // The text survives, made visible.
    let visible = HOSTILE
        .replace('\u{1b}', "\\u{1b}")
        .replace('\u{202e}', "\\u{202e}");
    let text = root.text();
    assert!(text.contains(&visible), "hostile text shown verbatim");
    assert!(text.contains("\\u{0}\\u{7f}\\u{85}\\u{fffe}"));
    // The hostile id still gets a working anchor.
    for c in &report.cases {
        find_by_id(&root, &case_anchor(&c.id));
    }
    // Attribute values with quotes stay inside their attribute.
    for n in root.descendants() {
        assert!(!n.attrs.contains_key("onmouseover"));
    }
}

#[test]
fn duplicate_case_ids_get_distinct_anchors() {
    let mut report = sample();
    let dup = report.cases[0].clone();
    report.cases.push(dup);
    let html = html_string(&report);
    check_page(&html); // duplicate ids would fail here
    let anchor = case_anchor(&report.cases[0].id);
    assert!(html.contains(&format!("id=\"{anchor}\"")));
    assert!(html.contains(&format!("id=\"{anchor}~2\"")));
}

// ---------------------------------------------------------------- Markdown

/// Splits a Markdown table row on its unescaped pipes.
fn md_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            cells.last_mut().unwrap().push(c);
            escaped = false;
        } else if c == '\\' {
            cells.last_mut().unwrap().push(c);
            escaped = true;
        } else if c == '|' {
            cells.push(String::new());
        } else {
            cells.last_mut().unwrap().push(c);
        }
    }
    // Leading and trailing pipes leave empty ends.
    cells[1..cells.len() - 1]
        .iter()
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn markdown_has_the_grid_tables_and_failure_sections() {
    let report = sample();
    let md = markdown_string(&report);
    for h in [
        "# s2spec conformance report",
        "## Compatibility grid",
        "### Inbound: the peer initiates, the target receives",
        "### Outbound: the target initiates toward the peer",
        "## Certificates",
        "## DNS",
        "## Strangers",
        "## Configuration cases",
        "## Other matrix cases",
        "## Scenarios by specification",
        "### rfc6120",
        "### xep0220",
        "## Non-passing cases",
    ] {
        assert!(md.lines().any(|l| l == h), "missing heading {h:?}");
    }
    // The grid header names all 18 peers in SPEC order.
    let header = md
        .lines()
        .find(|l| l.starts_with("| target \\\\ peer |"))
        .expect("grid header");
    assert_eq!(md_cells(header)[1..], codes()[..]);
    let rows: Vec<Vec<String>> = md
        .lines()
        .skip_while(|l| !l.starts_with("| target \\\\ peer |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(md_cells)
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        ["**RR1**", "**OO1**", "**NN1**"]
    );
    for r in &rows {
        assert_eq!(r.len(), 19);
    }
    assert_eq!(rows[0][1], "🟩 SASL");
    // A failing cell links to its details, which exist.
    let anchor = case_anchor("matrix/in/t-NN1/p-NN1/valid/srv");
    let nn1 = 1 + codes().iter().position(|c| c == "NN1").unwrap();
    assert_eq!(rows[2][nn1], format!("[🟥 — (exp. TCP-DB)](#{anchor})"));
    for c in report.cases.iter().filter(|c| c.verdict != Verdict::Pass) {
        let a = format!("<a id=\"{}\"></a>", case_anchor(&c.id));
        assert!(md.contains(&a), "details anchor of {}", c.id);
        for e in &c.transcript {
            assert!(md.contains(&s2spec::report::transcript_line(e)));
        }
    }
    assert!(md.contains("#### 🟥 fail: rfc6120/5.4.3.3/starttls-pipelining"));
    assert!(md.contains("  - requirement: the oracle wants refused"));
    // Transcripts and messages sit in fenced blocks.
    assert!(
        md.contains("```text\n- fail\\: something") || md.contains("```text\n- fail: something")
    );
}

/// The lines of a Markdown document outside fenced code blocks.
fn outside_fences(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let ticks: String = line.chars().take_while(|c| *c == '`').collect();
        match &fence {
            None if ticks.len() >= 3 => fence = Some(ticks),
            Some(f) if line == f => fence = None,
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert!(fence.is_none(), "unclosed fence");
    out
}

#[test]
fn hostile_strings_are_escaped_in_markdown() {
    let md = markdown_string(&hostile());
    // Code blocks hold data verbatim (that is safe); everything else escapes it.
    let prose = outside_fences(&md);
    assert!(!prose.contains("<script>"));
    assert!(!prose.contains("<img"));
    for c in [
        '\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{202e}', '\u{fffe}',
    ] {
        assert!(!md.contains(c), "raw {c:?} in the markdown");
    }
    // Pipes in data do not add table cells.
    let row = |prefix: &str| {
        let line = md.lines().find(|l| l.starts_with(prefix)).expect(prefix);
        md_cells(line).len()
    };
    assert_eq!(row("| target |"), 2, "run table");
    assert_eq!(row("| [rfc6120/"), 5, "scenario table");
    // The transcript holds a run of three backticks: the fence is longer.
    assert!(md.contains("````text\n"));
    assert!(md.contains("&lt;script&gt;alert\\(\"x\"\\)&lt;/script&gt;"));
}

// ---------------------------------------------------------------- files

#[test]
fn write_functions_write_the_strings() {
    let report = sample();
    let dir = temp_dir("write");
    write_html(&report, &dir.join("report.html")).expect("write html");
    write_markdown(&report, &dir.join("report.md")).expect("write md");
    assert_eq!(
        std::fs::read_to_string(dir.join("report.html")).unwrap(),
        html_string(&report)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("report.md")).unwrap(),
        markdown_string(&report)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn empty_report_renders() {
    let report = Report::new(run_info(), vec![]);
    let root = check_page(&html_string(&report));
    assert!(grids(&root).is_empty());
    assert!(markdown_string(&report).contains("Every case passed."));
}

// ---------------------------------------------------------------- reference

#[test]
fn reference_report_renders() {
    let Some(report) = reference() else {
        eprintln!("reports/reference/report.json absent: skipped");
        return;
    };
    let html = html_string(&report);
    let root = check_page(&html);
    let grids = grids(&root);
    // Rows: every target configuration with valid/srv cases, in SPEC order.
    for dir in ["in", "out"] {
        let mut present: Vec<String> = report
            .cases
            .iter()
            .filter_map(|c| {
                let p: Vec<&str> = c.id.split('/').collect();
                (p.len() == 6
                    && p[1] == dir
                    && p[4] == "valid"
                    && p[5] == "srv"
                    && p[2] != "t-none")
                    .then(|| p[2][2..].to_string())
            })
            .collect();
        present.sort_by_key(|code| codes().iter().position(|c| c == code));
        present.dedup();
        let (cols, rows) = grid_shape(grids[dir]);
        assert_eq!(cols.len(), 19);
        assert_eq!(
            rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            present
        );
        for (_, cells) in rows {
            assert_eq!(cells.len(), 18);
        }
    }
    for c in &report.cases {
        find_by_id(&root, &case_anchor(&c.id));
    }
    // Passing transcripts are included but collapsed; keep an eye on size.
    assert!(
        html.len() < 16 * 1024 * 1024,
        "page is {} bytes",
        html.len()
    );
    let md = markdown_string(&report);
    assert!(md.contains("## Compatibility grid"));
}

/// Writes the reference report's HTML and Markdown for a look in a browser:
/// `S2SPEC_HUMAN_OUT=/tmp/x cargo test --test report_human -- --ignored`.
#[test]
#[ignore]
fn render_reference_to_files() {
    let report = reference().expect("reports/reference/report.json");
    let dir = std::env::var_os("S2SPEC_HUMAN_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp_dir("render"));
    write_html(&report, &dir.join("report.html")).expect("write html");
    write_markdown(&report, &dir.join("report.md")).expect("write md");
    // A failing variant too, to see the failure details.
    let mut failing = report.clone();
    for c in failing
        .cases
        .iter_mut()
        .filter(|c| c.id.contains("/t-RO1/") || c.id.starts_with("config/NR"))
    {
        c.verdict = Verdict::Fail;
        c.messages = vec![format!("expected something else for {}", c.id)];
    }
    if let Some(c) = failing
        .cases
        .iter_mut()
        .find(|c| c.id.contains("/t-OO1/p-OO1/valid/srv"))
    {
        c.verdict = Verdict::NonStrict;
    }
    if let Some(c) = failing
        .cases
        .iter_mut()
        .find(|c| c.id.contains("/t-OO1/p-ON1/valid/srv"))
    {
        c.verdict = Verdict::Error;
        c.observed = None;
    }
    if let Some(c) = failing
        .cases
        .iter_mut()
        .find(|c| c.id.contains("/t-OO1/p-NN1/valid/srv"))
    {
        c.verdict = Verdict::NotApplicable;
        c.observed = None;
    }
    failing.cases.push(case(
        "rfc6120/5.4.3.3/starttls-pipelining",
        Verdict::Fail,
        Some(REFUSED),
        Some(TLSDB),
    ));
    failing.cases.push(case(
        "xep0220/2.1/db-result-before-tls",
        Verdict::Pass,
        Some(REFUSED),
        Some(REFUSED),
    ));
    let failing = Report::new(failing.run.clone(), failing.cases);
    write_html(&failing, &dir.join("failing.html")).expect("write html");
    write_markdown(&failing, &dir.join("failing.md")).expect("write md");
    eprintln!("wrote {}", dir.display());
}
