//! `report.html`: one self-contained page (inline CSS, no external assets).
//!
//! The markup is HTML5 written so that it is also well-formed XML (void
//! elements self-closed, every other element closed, attributes quoted,
//! boolean attributes as `open=""`), which lets tests check it with an XML
//! parser. The one inline script only opens the `<details>` a link points
//! at; the page works without it.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::super::json::write_atomic;
use super::super::{CaseResult, Report, Verdict, transcript_line};
use super::{
    Layout, VariantTable, all_negotiations, cell_expected, cell_text, direction_title,
    matrix_codes, negotiation_title, plural, tls_word, visible,
};
use crate::stream::{Dir, EntryKind};

/// Writes [`html_string`] to `path` atomically, creating its directory.
pub fn write_html(report: &Report, path: &Path) -> io::Result<()> {
    write_atomic(path, html_string(report).as_bytes())
}

/// The run as a self-contained HTML page.
pub fn html_string(report: &Report) -> String {
    let layout = Layout::of(report);
    let mut h = Html {
        out: String::with_capacity(64 * 1024 + report.cases.len() * 8 * 1024),
        report,
        layout: &layout,
    };
    h.page();
    h.out
}

/// Text content: `&`, `<`, `>` escaped, controls made visible.
fn text(s: &str) -> String {
    escape(&visible(s, true), false)
}

/// An attribute value (always written in double quotes).
fn attr(s: &str) -> String {
    escape(&visible(s, false), true)
}

fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            '\'' if quotes => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// CSS class of a verdict (a fixed string, never report data).
fn vclass(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "v-pass",
        Verdict::NonStrict => "v-non-strict",
        Verdict::NotApplicable => "v-not-applicable",
        Verdict::Fail => "v-fail",
        Verdict::Error => "v-error",
    }
}

const STYLE: &str = r#"
:root{--pass:#cdeccd;--pass-b:#2e7d32;--ns:#ffe29a;--ns-b:#b7791f;--fail:#f7b6b2;--fail-b:#c62828;
--err:#dcc6f0;--err-b:#6a1b9a;--na:#e2e2e2;--na-b:#757575}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:0 1.5em 3em;max-width:1800px;color:#1d1d1d;background:#fff}
h1{margin:.8em 0 .3em}h2{margin-top:2em;border-bottom:2px solid #ddd;padding-bottom:.2em}h3{margin:1.4em 0 .4em}
code,pre,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
table{border-collapse:collapse}th,td{border:1px solid #c8c8c8;padding:3px 6px;vertical-align:top}
th{background:#f3f3f3;text-align:left}
table.run th{width:9em}
.scroll{overflow-x:auto;max-width:100%}
table.grid td,table.var td{text-align:center;padding:0;min-width:4.2em;white-space:nowrap}
table.grid th,table.var th{text-align:center;white-space:nowrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
table.grid tbody th,table.var tbody th{text-align:left}
table.grid td a,table.var td a{display:block;padding:3px 5px;color:inherit;text-decoration:none;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
table.grid td a:hover,table.var td a:hover{outline:2px solid #333;outline-offset:-2px}
table.grid td.v-fail a::before,table.var td.v-fail a::before{content:"✗ "}
table.grid td.v-error a::before,table.var td.v-error a::before{content:"‼ "}
table.grid td.v-non-strict a::before,table.var td.v-non-strict a::before{content:"! "}
td .exp{display:block;font-size:10.5px;opacity:.85}
td.missing{color:#aaa;background:#fafafa}
.v-pass{background:var(--pass)}.v-non-strict{background:var(--ns)}.v-fail{background:var(--fail)}
.v-error{background:var(--err)}.v-not-applicable{background:var(--na)}
.badge{display:inline-block;border-radius:3px;padding:0 .45em;font-size:12px;font-weight:600;border:1px solid #0002;white-space:nowrap}
.summary .badge{font-size:14px;padding:.1em .6em;margin-right:.3em}
.legend{margin:.4em 0 .8em;font-size:13px}.legend .badge{margin-right:.4em}
nav ul{columns:2;max-width:50em}
table.list td:first-child{white-space:nowrap}
article.case{border-left:6px solid #999;padding:.2em 0 .6em 1em;margin:1.4em 0}
article.v-fail{border-color:var(--fail-b)}article.v-error{border-color:var(--err-b)}
article.v-non-strict{border-color:var(--ns-b)}article.v-not-applicable{border-color:var(--na-b)}
article.case,details.case{background:none}
article.case h3{margin:.2em 0;font-size:15px;word-break:break-all}
details.case{margin:.15em 0;border:1px solid #e3e3e3;border-left:5px solid var(--pass-b);padding:.15em .6em}
details.case>summary{cursor:pointer;word-break:break-all}
details.group>summary{cursor:pointer;font-weight:600;margin:.4em 0}
:target{outline:3px solid #1565c0;outline-offset:2px}
pre{white-space:pre-wrap;word-break:break-all;margin:.3em 0}
pre.transcript{background:#f7f7f7;border:1px solid #e0e0e0;padding:.5em;max-height:40em;overflow:auto}
pre.transcript .s{color:#0d47a1}pre.transcript .r{color:#1b5e20}pre.transcript .n{color:#6d6d6d;font-style:italic}
pre.msg{background:#fff6f5;border:1px solid #f0d0cc;padding:.3em .5em}
table.eo{margin:.4em 0}
.muted{color:#666}
"#;

/// Opens the `<details>` a link points at (the browser already opens the
/// ones around it). Written without `<` or `&`, so the page stays valid XML.
const SCRIPT: &str = "function s2o(){var e=document.getElementById(decodeURIComponent(location.hash.slice(1)));for(;e;e=e.parentElement){if(e.tagName==\"DETAILS\"){e.open=true}}}addEventListener(\"hashchange\",s2o);s2o();";

struct Html<'a> {
    out: String,
    report: &'a Report,
    layout: &'a Layout,
}

impl Html<'_> {
    fn w(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn page(&mut self) {
        let (report, layout) = (self.report, self.layout);
        let run = &report.run;
        let _ = write!(
            self.out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\
             <title>s2spec report: {}</title><style>{STYLE}</style></head>\n<body>\n",
            text(&run.target)
        );
        self.header();
        self.w("<main>\n");
        self.baseline();
        self.grids();
        self.variant_section("certificates", "Certificates", true);
        self.variant_section("dns", "DNS", false);
        self.list_section(
            "strangers",
            "Strangers",
            "Peers whose domain matches no partner configuration: the target must refuse them.",
            &layout.strangers,
        );
        self.list_section(
            "config",
            "Configuration cases",
            "Invalid partner configurations (SPEC §3): the target must refuse to accept them.",
            &layout.config,
        );
        if !layout.other_matrix.is_empty() {
            self.list_section(
                "other-matrix",
                "Other matrix cases",
                "Matrix cases that fit none of the tables above.",
                &layout.other_matrix,
            );
        }
        self.scenarios();
        self.problems();
        self.passing();
        let _ = write!(
            self.out,
            "</main>\n<script>{SCRIPT}</script>\n</body></html>\n"
        );
    }

    fn header(&mut self) {
        let (report, layout) = (self.report, self.layout);
        let s = &report.summary;
        self.w("<header>\n<h1>s2spec conformance report</h1>\n<table class=\"run\">");
        for (k, v) in super::run_fields(report) {
            let _ = write!(self.out, "<tr><th>{k}</th><td>{}</td></tr>", text(&v));
        }
        self.w("</table>\n<p class=\"summary\">");
        let _ = write!(self.out, "<b>{} cases:</b> ", s.total);
        for (v, n) in [
            (Verdict::Pass, s.pass),
            (Verdict::NonStrict, s.non_strict),
            (Verdict::NotApplicable, s.not_applicable),
            (Verdict::Fail, s.fail),
            (Verdict::Error, s.error),
        ] {
            let _ = write!(
                self.out,
                "<span class=\"badge {}\">{n} {}</span>",
                vclass(v),
                v.as_str()
            );
        }
        self.w("</p>\n");
        if s.fail + s.non_strict > 0 {
            let _ = writeln!(
                self.out,
                "<p class=\"summary\">By source (SPEC §4.6): fail — {}; non-strict — {}.</p>",
                text(&s.fail_by_source.line()),
                text(&s.non_strict_by_source.line())
            );
        }
        self.w("<nav><ul>");
        let mut toc: Vec<(&str, String)> = vec![("grid", "Compatibility grid".into())];
        if !layout.certs.is_empty() {
            toc.push(("certificates", "Certificates".into()));
        }
        if !layout.dns.is_empty() {
            toc.push(("dns", "DNS".into()));
        }
        toc.push(("strangers", "Strangers".into()));
        toc.push(("config", "Configuration cases".into()));
        if !layout.other_matrix.is_empty() {
            toc.push(("other-matrix", "Other matrix cases".into()));
        }
        toc.push(("scenarios", "Scenarios by specification".into()));
        let problems = report.cases.len() - s.pass.min(report.cases.len());
        toc.push(("problems", format!("Non-passing cases ({problems})")));
        toc.push(("passing", "Passing cases".into()));
        if report.baseline.is_some() {
            toc.insert(0, ("baseline", "Baseline".into()));
        }
        for (id, title) in toc {
            let _ = write!(self.out, "<li><a href=\"#{id}\">{}</a></li>", text(&title));
        }
        self.w("</ul></nav>\n</header>\n");
    }

    fn legend(&mut self) {
        self.w("<p class=\"legend\">");
        for v in Verdict::ALL {
            let _ = write!(
                self.out,
                "<span class=\"badge {}\">{}</span>",
                vclass(v),
                v.as_str()
            );
        }
        self.w(
            " Cells show the observed outcome: <b>SASL</b> = SASL over TLS, \
             <b>TLS-DB</b> = TLS Dialback, <b>TCP-DB</b> = TCP Dialback, <b>—</b> = refused; \
             a second line gives the expected outcome when it differs; \
             ✗ marks a failure, ‼ an error, ! a non-strict pass. Every cell links to its case.</p>\n",
        );
    }

    /// A grid or table cell for one case (or a placeholder for none).
    fn cell(&mut self, case: Option<usize>) {
        let (report, layout) = (self.report, self.layout);
        let Some(i) = case else {
            self.w("<td class=\"missing\" title=\"no such case in this run\">·</td>");
            return;
        };
        let c = &report.cases[i];
        let mut title = format!("{} — {}", c.id, c.verdict);
        if let Some(e) = &c.expected {
            let _ = write!(title, "; expected {}", e.outcome);
        }
        if let Some(o) = &c.observed {
            let _ = write!(title, "; observed {}", o.outcome);
        }
        let _ = write!(
            self.out,
            "<td class=\"{}\"><a href=\"#{}\" title=\"{}\">{}",
            vclass(c.verdict),
            attr(&layout.anchors[i]),
            attr(&title),
            text(&cell_text(c))
        );
        if let Some(e) = cell_expected(c) {
            let _ = write!(self.out, "<span class=\"exp\">exp. {}</span>", text(&e));
        }
        self.w("</a></td>");
    }

    fn grids(&mut self) {
        let layout = self.layout;
        self.w("<section id=\"grid\">\n<h2>Compatibility grid</h2>\n");
        self.w(
            "<p>Rows: the target's partner configuration; columns: the simulated peer's; \
             both as TLS, SASL, Dialback (R = required, O = optional, N = not supported, \
             1/0 = dialback on/off), in the order of SPEC §4's table. Valid certificate, SRV records.</p>\n",
        );
        self.legend();
        if layout.grids.is_empty() {
            self.w("<p class=\"muted\">No matrix cases with a valid certificate and SRV records in this run.</p>\n");
        }
        let peers = all_negotiations();
        for g in &layout.grids {
            let _ = write!(
                self.out,
                "<h3 id=\"grid-{}\">{}</h3>\n<div class=\"scroll\"><table class=\"grid\" data-direction=\"{}\">\
                 <thead><tr><th title=\"target configuration (rows) × peer configuration (columns)\">target \\ peer</th>",
                g.dir.as_str(),
                text(direction_title(g.dir)),
                g.dir.as_str()
            );
            for p in &peers {
                let _ = write!(
                    self.out,
                    "<th title=\"{}\">{}</th>",
                    attr(&negotiation_title(*p)),
                    p.code()
                );
            }
            self.w("</tr></thead>\n<tbody>\n");
            for (t, cells) in &g.rows {
                let _ = write!(
                    self.out,
                    "<tr><th scope=\"row\" title=\"{}\">{}</th>",
                    attr(&negotiation_title(*t)),
                    t.code()
                );
                for c in cells {
                    self.cell(*c);
                }
                self.w("</tr>\n");
            }
            self.w("</tbody></table></div>\n");
        }
        self.w("</section>\n");
    }

    fn variant_section(&mut self, id: &str, title: &str, certs: bool) {
        let layout = self.layout;
        let tables: &[VariantTable] = if certs { &layout.certs } else { &layout.dns };
        if tables.is_empty() {
            return;
        }
        let _ = write!(self.out, "<section id=\"{id}\">\n<h2>{title}</h2>\n");
        self.w(if certs {
            "<p>The peer's certificate variant (SPEC §5), with SRV records. \
             The first column is the grid's case with a valid certificate.</p>\n"
        } else {
            "<p>How the peer's domain resolves (SPEC §6), with a valid certificate. \
             The first column is the grid's case with plain SRV records.</p>\n"
        });
        for t in tables {
            let _ = write!(
                self.out,
                "<h3 id=\"{id}-{}\">{}</h3>\n<div class=\"scroll\"><table class=\"var\">\
                 <thead><tr><th>target</th><th>peer</th>",
                t.dir.as_str(),
                text(direction_title(t.dir))
            );
            for c in &t.columns {
                let _ = write!(self.out, "<th>{}</th>", text(c));
            }
            self.w("</tr></thead>\n<tbody>\n");
            for row in &t.rows {
                let _ = write!(
                    self.out,
                    "<tr><th scope=\"row\" title=\"{}\">{}</th><th title=\"{}\">{}</th>",
                    attr(&negotiation_title(row.target)),
                    row.target.code(),
                    attr(&negotiation_title(row.peer)),
                    row.peer.code()
                );
                for c in &row.cells {
                    self.cell(*c);
                }
                self.w("</tr>\n");
            }
            self.w("</tbody></table></div>\n");
        }
        self.w("</section>\n");
    }

    /// A table of cases: id (linked), verdict, expected, observed, description.
    fn case_table(&mut self, cases: &[usize]) {
        let (report, layout) = (self.report, self.layout);
        self.w(
            "<div class=\"scroll\"><table class=\"list\"><thead><tr><th>case</th><th>verdict</th>\
             <th>expected</th><th>observed</th><th>description</th></tr></thead>\n<tbody>\n",
        );
        for &i in cases {
            let c = &report.cases[i];
            let expected = c
                .expected
                .as_ref()
                .map_or("—".to_string(), |e| e.outcome.to_string());
            let observed = c
                .observed
                .as_ref()
                .map_or("—".to_string(), |o| o.outcome.to_string());
            let _ = writeln!(
                self.out,
                "<tr><td><a href=\"#{}\"><code>{}</code></a></td>\
                 <td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                attr(&layout.anchors[i]),
                text(&c.id),
                vclass(c.verdict),
                c.verdict.as_str(),
                text(&expected),
                text(&observed),
                text(&c.description)
            );
        }
        self.w("</tbody></table></div>\n");
    }

    fn list_section(&mut self, id: &str, title: &str, intro: &str, cases: &[usize]) {
        let _ = write!(
            self.out,
            "<section id=\"{id}\">\n<h2>{title}</h2>\n<p>{}</p>\n",
            text(intro)
        );
        if cases.is_empty() {
            self.w("<p class=\"muted\">None in this run.</p>\n");
        } else {
            self.case_table(cases);
        }
        self.w("</section>\n");
    }

    fn scenarios(&mut self) {
        let (report, layout) = (self.report, self.layout);
        self.w("<section id=\"scenarios\">\n<h2>Scenarios by specification</h2>\n");
        if layout.scenarios.is_empty() {
            self.w("<p class=\"muted\">No scripted scenarios in this run.</p>\n");
        }
        for (k, (spec, cases)) in layout.scenarios.iter().enumerate() {
            let mut counts = String::new();
            for v in Verdict::ALL {
                let n = cases
                    .iter()
                    .filter(|&&i| report.cases[i].verdict == v)
                    .count();
                if n > 0 {
                    let _ = write!(
                        counts,
                        " <span class=\"badge {}\">{n} {}</span>",
                        vclass(v),
                        v.as_str()
                    );
                }
            }
            // The spec name is report data: its heading id is a counter.
            let _ = writeln!(self.out, "<h3 id=\"spec-{k}\">{}{counts}</h3>", text(spec));
            self.case_table(cases);
        }
        self.w("</section>\n");
    }

    fn problems(&mut self) {
        let report = self.report;
        self.w("<section id=\"problems\">\n<h2>Non-passing cases</h2>\n");
        let groups = super::problem_groups(report);
        let any = !groups.is_empty();
        for (v, idx) in groups {
            let _ = writeln!(
                self.out,
                "<h3 id=\"problems-{}\"><span class=\"badge {}\">{}</span> {}</h3>",
                v.as_str(),
                vclass(v),
                v.as_str(),
                plural(idx.len(), "case")
            );
            for i in idx {
                self.problem(i);
            }
        }
        if !any {
            self.w("<p>Every case passed.</p>\n");
        }
        self.w("</section>\n");
    }

    /// The full detail of a non-passing case, transcript open.
    fn problem(&mut self, i: usize) {
        let (report, layout) = (self.report, self.layout);
        let c = &report.cases[i];
        let _ = write!(
            self.out,
            "<article class=\"case {}\" id=\"{}\">\n<h3><span class=\"badge {}\">{}</span> <code>{}</code></h3>\n",
            vclass(c.verdict),
            attr(&layout.anchors[i]),
            vclass(c.verdict),
            c.verdict.as_str(),
            text(&c.id)
        );
        self.case_body(c, true);
        self.w("</article>\n");
    }

    /// What every case detail holds: description, messages, expected vs
    /// observed, rationale and references, facts, transcript.
    fn case_body(&mut self, c: &CaseResult, open: bool) {
        let _ = writeln!(
            self.out,
            "<p>{} <span class=\"muted\">({} · {} ms)</span></p>",
            text(&c.description),
            text(&c.family),
            c.duration_ms
        );
        if let Some(codes) = matrix_codes(&c.id) {
            let _ = writeln!(
                self.out,
                "<p class=\"muted\">target {} · peer {}</p>",
                text(&codes.0),
                text(&codes.1)
            );
        }
        // The messages say why the case did not pass: first, before the detail.
        if !c.messages.is_empty() {
            self.w("<p><b>Messages:</b></p>\n");
            for m in &c.messages {
                let _ = writeln!(self.out, "<pre class=\"msg\">{}</pre>", text(m));
            }
        }
        self.w("<table class=\"eo\"><thead><tr><th></th><th>outcome</th><th>stream</th></tr></thead><tbody>");
        match &c.expected {
            Some(e) => {
                let _ = write!(
                    self.out,
                    "<tr><th>expected</th><td>{}</td><td>{}</td></tr>",
                    text(&e.outcome.to_string()),
                    tls_word(e.tls)
                );
            }
            None => self.w("<tr><th>expected</th><td colspan=\"2\" class=\"muted\">nothing (no expectation)</td></tr>"),
        }
        match &c.observed {
            Some(o) => {
                let _ = write!(
                    self.out,
                    "<tr><th>observed</th><td>{}</td><td>{}</td></tr>",
                    text(&o.outcome.to_string()),
                    tls_word(o.tls)
                );
            }
            None => self.w(
                "<tr><th>observed</th><td colspan=\"2\" class=\"muted\">nothing observed</td></tr>",
            ),
        }
        self.w("</tbody></table>\n");
        if let Some(e) = &c.expected {
            if !e.rationale.is_empty() {
                let _ = writeln!(
                    self.out,
                    "<p><b>Requirement:</b> {}</p>",
                    text(&e.rationale)
                );
            }
            if !e.refs.is_empty() {
                let refs: Vec<String> = e.refs.iter().map(|r| text(r)).collect();
                let _ = writeln!(self.out, "<p><b>References:</b> {}</p>", refs.join("; "));
            }
            if let Some(src) = &e.source {
                let _ = writeln!(
                    self.out,
                    "<p><b>Another outcome deviates from:</b> {}</p>",
                    text(&src.label())
                );
            }
            if !e.alternatives.is_empty() {
                self.w("<p><b>Alternatives:</b></p><ul>");
                for a in &e.alternatives {
                    let _ = write!(self.out, "<li>{}</li>", text(a));
                }
                self.w("</ul>\n");
            }
        }
        if let Some(o) = &c.observed
            && !o.facts.is_empty()
        {
            self.w("<p><b>Facts:</b></p><ul>");
            for f in &o.facts {
                let _ = write!(self.out, "<li>{}</li>", text(f));
            }
            self.w("</ul>\n");
        }
        let t = &c.transcript;
        if t.is_empty() {
            let note = self.report.no_transcript_note(c);
            let _ = writeln!(self.out, "<p class=\"muted\">{}</p>", text(&note));
        } else {
            let _ = write!(
                self.out,
                "<details{}><summary>Transcript ({} lines)</summary><pre class=\"transcript\">",
                if open { " open=\"\"" } else { "" },
                t.len()
            );
            for e in t {
                let class = match (e.kind, e.dir) {
                    (EntryKind::Note, _) => "n",
                    (_, Dir::Sent) => "s",
                    (_, Dir::Received) => "r",
                };
                let _ = writeln!(
                    self.out,
                    "<span class=\"{class}\">{}</span>",
                    text(&transcript_line(e))
                );
            }
            self.w("</pre></details>\n");
        }
    }

    /// Passing cases, collapsed, grouped like the JUnit suites; each still
    /// has its anchor so every grid link resolves.
    fn passing(&mut self) {
        let (report, layout) = (self.report, self.layout);
        self.w("<section id=\"passing\">\n<h2>Passing cases</h2>\n");
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, c) in report.cases.iter().enumerate() {
            if c.verdict != Verdict::Pass {
                continue;
            }
            let g = super::super::group_of(&c.id);
            match groups.iter_mut().find(|(name, _)| *name == g) {
                Some((_, v)) => v.push(i),
                None => groups.push((g, vec![i])),
            }
        }
        if groups.is_empty() {
            self.w("<p class=\"muted\">No case passed.</p>\n");
        }
        for (g, idx) in groups {
            let _ = writeln!(
                self.out,
                "<details class=\"group\"><summary>{} ({})</summary>",
                text(g),
                plural(idx.len(), "case")
            );
            for i in idx {
                let c = &report.cases[i];
                let _ = writeln!(
                    self.out,
                    "<details class=\"case\" id=\"{}\"><summary><code>{}</code> — {}</summary>",
                    attr(&layout.anchors[i]),
                    text(&c.id),
                    text(&cell_text(c))
                );
                self.case_body(c, false);
                self.w("</details>\n");
            }
            self.w("</details>\n");
        }
        self.w("</section>\n");
    }
}

impl Html<'_> {
    /// Known deviations, new and worse cases and fixed entries of a run
    /// measured against a baseline, apart from the grids.
    fn baseline(&mut self) {
        let Some(b) = &self.report.baseline else {
            return;
        };
        let _ = writeln!(
            self.out,
            "<section id=\"baseline\">\n<h2>Baseline</h2>\n<p>Measured against <code>{}</code>{}: <b>gate {}</b>. {} known deviation(s), {} new or worse, {} changed, {} fixed.</p>",
            text(&b.file),
            if b.strict { " (strict)" } else { "" },
            if b.passes() { "holds" } else { "failed" },
            b.known.len(),
            b.new.iter().filter(|c| c.gating).count(),
            b.changed.len(),
            b.fixed.len()
        );
        if !b.new.is_empty() || !b.changed.is_empty() {
            self.w("<h3>New, worse or changed</h3>\n<table class=\"list\"><thead><tr><th>case</th><th>verdict</th><th>baseline</th><th>message</th></tr></thead><tbody>");
            for c in b.new.iter().chain(&b.changed) {
                let baseline = match (c.baseline_verdict, c.line) {
                    (Some(v), Some(l)) => format!("{v} (line {l})"),
                    _ if c.gating => "not listed".to_string(),
                    _ => "not listed (not gating)".to_string(),
                };
                let _ = write!(
                    self.out,
                    "<tr><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
                    text(&c.id),
                    vclass(c.verdict),
                    c.verdict.as_str(),
                    text(&baseline),
                    text(&c.message)
                );
            }
            self.w("</tbody></table>\n");
        }
        if !b.fixed.is_empty() {
            self.w("<h3>Fixed (remove from the baseline)</h3>\n<table class=\"list\"><thead><tr><th>entry</th><th>line</th><th>verdict</th><th>cases now passing</th><th>reason</th></tr></thead><tbody>");
            for f in &b.fixed {
                let _ = write!(
                    self.out,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    text(&f.entry),
                    f.line,
                    f.verdict.as_str(),
                    f.cases,
                    text(&f.reason)
                );
            }
            self.w("</tbody></table>\n");
        }
        if !b.known.is_empty() {
            self.w("<details><summary>Known deviations</summary>\n<table class=\"list\"><thead><tr><th>case</th><th>verdict</th><th>entry</th><th>reason</th></tr></thead><tbody>");
            for k in &b.known {
                let _ = write!(
                    self.out,
                    "<tr><td><code>{}</code></td><td class=\"{}\">{}</td><td><code>{}</code> (line {})</td><td>{}</td></tr>",
                    text(&k.id),
                    vclass(k.verdict),
                    k.verdict.as_str(),
                    text(&k.entry),
                    k.line,
                    if k.reason.is_empty() {
                        "<i>no reason given</i>".to_string()
                    } else {
                        text(&k.reason)
                    }
                );
            }
            self.w("</tbody></table></details>\n");
        }
        self.w("</section>\n");
    }
}
