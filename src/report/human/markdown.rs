//! `report.md`: the same sections as `report.html`, readable on GitHub.
//!
//! Colour is carried by a square emoji per verdict. Report data is
//! backslash-escaped in text and tables (so a peer cannot inject links,
//! HTML or table cells) and put in fences longer than any backtick run it
//! contains in code blocks.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::super::json::write_atomic;
use super::super::{CaseResult, Report, Verdict, transcript_line};
use super::{
    Layout, VariantTable, all_negotiations, cell_expected, cell_text, direction_title,
    matrix_codes, plural, tls_word, visible,
};

/// Writes [`markdown_string`] to `path` atomically, creating its directory.
pub fn write_markdown(report: &Report, path: &Path) -> io::Result<()> {
    write_atomic(path, markdown_string(report).as_bytes())
}

/// The run as a Markdown document (GitHub-flavoured: tables, emoji).
pub fn markdown_string(report: &Report) -> String {
    let layout = Layout::of(report);
    let mut out = String::with_capacity(32 * 1024);
    header(&mut out, report);
    baseline_section(&mut out, report);
    grids(&mut out, report, &layout);
    variant_section(
        &mut out,
        report,
        &layout,
        &layout.certs,
        "Certificates",
        true,
    );
    variant_section(&mut out, report, &layout, &layout.dns, "DNS", false);
    list_section(
        &mut out,
        report,
        &layout,
        "Strangers",
        "Peers whose domain matches no partner configuration: the target must refuse them.",
        &layout.strangers,
    );
    list_section(
        &mut out,
        report,
        &layout,
        "Configuration cases",
        "Invalid partner configurations (SPEC §3): the target must refuse to accept them.",
        &layout.config,
    );
    if !layout.other_matrix.is_empty() {
        list_section(
            &mut out,
            report,
            &layout,
            "Other matrix cases",
            "Matrix cases that fit none of the tables above.",
            &layout.other_matrix,
        );
    }
    scenarios(&mut out, report, &layout);
    problems(&mut out, report, &layout);
    out
}

/// The colour of a verdict.
fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "🟩",
        Verdict::NonStrict => "🟨",
        Verdict::Fail => "🟥",
        Verdict::Error => "🟪",
        Verdict::NotApplicable => "⬜",
    }
}

/// Inline text: every character Markdown (or GitHub's autolinker, math and
/// tables) gives a meaning is backslash-escaped, `<`/`>`/`&` are written as
/// entities, line breaks become spaces.
fn md(s: &str) -> String {
    let s = visible(s, false);
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // `scheme://` is what GitHub autolinks; breaking the colon is enough.
            ':' if chars.peek() == Some(&'/') => out.push_str("\\:"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '!' | '|'
            | '~' | '$' | '@' | ':' | '=' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block holding `body` verbatim (controls made visible).
fn fenced(out: &mut String, body: &str) {
    let body = visible(body, true);
    // CommonMark closes a fence only with at least as many backticks.
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat((longest + 1).max(3));
    let _ = writeln!(out, "{fence}text");
    out.push_str(&body);
    if !body.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "{fence}\n");
}

fn header(out: &mut String, report: &Report) {
    let s = &report.summary;
    out.push_str("# s2spec conformance report\n\n| run | |\n|---|---|\n");
    for (k, v) in super::run_fields(report) {
        let _ = writeln!(out, "| {k} | {} |", md(&v));
    }
    let _ = writeln!(
        out,
        "\n**{} cases:** {} {} pass · {} {} non-strict · {} {} not-applicable · {} {} fail · {} {} error\n",
        s.total,
        mark(Verdict::Pass),
        s.pass,
        mark(Verdict::NonStrict),
        s.non_strict,
        mark(Verdict::NotApplicable),
        s.not_applicable,
        mark(Verdict::Fail),
        s.fail,
        mark(Verdict::Error),
        s.error
    );
    if s.fail + s.non_strict > 0 {
        let _ = writeln!(
            out,
            "By source (SPEC §4.6): fail — {}; non-strict — {}.\n",
            s.fail_by_source.line(),
            s.non_strict_by_source.line()
        );
    }
    out.push_str(
        "Legend: 🟩 pass · 🟨 non-strict · 🟥 fail · 🟪 error · ⬜ not applicable. \
         Cells show the observed outcome: SASL = SASL over TLS, TLS-DB = TLS Dialback, \
         TCP-DB = TCP Dialback, — = refused; \"exp.\" gives the expected outcome when it differs. \
         Non-passing cells link to the case's details at the end.\n\n",
    );
}

/// One table cell for a case.
fn cell(report: &Report, layout: &Layout, case: Option<usize>) -> String {
    let Some(i) = case else {
        return "·".to_string();
    };
    let c = &report.cases[i];
    let mut s = format!("{} {}", mark(c.verdict), md(&cell_text(c)));
    if let Some(e) = cell_expected(c) {
        let _ = write!(s, " (exp. {})", md(&e));
    }
    if c.verdict == Verdict::Pass {
        s
    } else {
        // Anchors are built from `[A-Za-z0-9./_~-]` only: safe in a link.
        format!("[{s}](#{})", layout.anchors[i])
    }
}

fn grids(out: &mut String, report: &Report, layout: &Layout) {
    out.push_str(
        "## Compatibility grid\n\nRows: the target's partner configuration; columns: the \
         simulated peer's; both as TLS, SASL, Dialback (R = required, O = optional, \
         N = not supported, 1/0 = dialback on/off), in the order of SPEC §4's table. \
         Valid certificate, SRV records.\n\n",
    );
    if layout.grids.is_empty() {
        out.push_str("No matrix cases with a valid certificate and SRV records in this run.\n\n");
    }
    let peers = all_negotiations();
    for g in &layout.grids {
        let _ = write!(
            out,
            "### {}\n\n| target \\\\ peer |",
            direction_title(g.dir)
        );
        for p in &peers {
            let _ = write!(out, " {} |", p.code());
        }
        out.push_str("\n|---|");
        out.push_str(&":---:|".repeat(peers.len()));
        out.push('\n');
        for (t, cells) in &g.rows {
            let _ = write!(out, "| **{}** |", t.code());
            for c in cells {
                let _ = write!(out, " {} |", cell(report, layout, *c));
            }
            out.push('\n');
        }
        out.push('\n');
    }
}

fn variant_section(
    out: &mut String,
    report: &Report,
    layout: &Layout,
    tables: &[VariantTable],
    title: &str,
    certs: bool,
) {
    if tables.is_empty() {
        return;
    }
    let _ = writeln!(out, "## {title}\n");
    out.push_str(if certs {
        "The peer's certificate variant (SPEC §5), with SRV records. The first column is \
         the grid's case with a valid certificate.\n\n"
    } else {
        "How the peer's domain resolves (SPEC §6), with a valid certificate. The first \
         column is the grid's case with plain SRV records.\n\n"
    });
    for t in tables {
        let _ = write!(out, "### {}\n\n| target | peer |", direction_title(t.dir));
        for c in &t.columns {
            let _ = write!(out, " {} |", md(c));
        }
        out.push_str("\n|---|---|");
        out.push_str(&":---:|".repeat(t.columns.len()));
        out.push('\n');
        for row in &t.rows {
            let _ = write!(out, "| **{}** | {} |", row.target.code(), row.peer.code());
            for c in &row.cells {
                let _ = write!(out, " {} |", cell(report, layout, *c));
            }
            out.push('\n');
        }
        out.push('\n');
    }
}

fn case_table(out: &mut String, report: &Report, layout: &Layout, cases: &[usize]) {
    out.push_str("| case | verdict | expected | observed | description |\n|---|---|---|---|---|\n");
    for &i in cases {
        let c = &report.cases[i];
        let id = if c.verdict == Verdict::Pass {
            md(&c.id)
        } else {
            format!("[{}](#{})", md(&c.id), layout.anchors[i])
        };
        let _ = writeln!(
            out,
            "| {id} | {} {} | {} | {} | {} |",
            mark(c.verdict),
            c.verdict.as_str(),
            md(&c
                .expected
                .as_ref()
                .map_or("—".to_string(), |e| e.outcome.to_string())),
            md(&c
                .observed
                .as_ref()
                .map_or("—".to_string(), |o| o.outcome.to_string())),
            md(&c.description)
        );
    }
    out.push('\n');
}

fn list_section(
    out: &mut String,
    report: &Report,
    layout: &Layout,
    title: &str,
    intro: &str,
    cases: &[usize],
) {
    let _ = writeln!(out, "## {title}\n\n{intro}\n");
    if cases.is_empty() {
        out.push_str("None in this run.\n\n");
    } else {
        case_table(out, report, layout, cases);
    }
}

fn scenarios(out: &mut String, report: &Report, layout: &Layout) {
    out.push_str("## Scenarios by specification\n\n");
    if layout.scenarios.is_empty() {
        out.push_str("No scripted scenarios in this run.\n\n");
    }
    for (spec, cases) in &layout.scenarios {
        let _ = write!(out, "### {}\n\n", md(spec));
        case_table(out, report, layout, cases);
    }
}

fn problems(out: &mut String, report: &Report, layout: &Layout) {
    out.push_str("## Non-passing cases\n\n");
    let groups = super::problem_groups(report);
    let any = !groups.is_empty();
    for (v, idx) in groups {
        let _ = writeln!(
            out,
            "### {} {} ({})\n",
            mark(v),
            v.as_str(),
            plural(idx.len(), "case")
        );
        for i in idx {
            let c = &report.cases[i];
            problem(out, c, &layout.anchors[i], &report.no_transcript_note(c));
        }
    }
    if !any {
        out.push_str("Every case passed.\n");
    }
}

/// `no_transcript` is what stands in for an empty transcript.
fn problem(out: &mut String, c: &CaseResult, anchor: &str, no_transcript: &str) {
    let _ = writeln!(
        out,
        "<a id=\"{anchor}\"></a>\n\n#### {} {}: {}\n",
        mark(c.verdict),
        c.verdict.as_str(),
        md(&c.id)
    );
    let _ = writeln!(
        out,
        "{} ({}, {} ms)\n",
        md(&c.description),
        md(&c.family),
        c.duration_ms
    );
    if !c.messages.is_empty() {
        out.push_str("Messages:\n\n");
        let listed: Vec<String> = c
            .messages
            .iter()
            .map(|m| format!("- {}", m.replace('\n', "\n  ")))
            .collect();
        fenced(out, &listed.join("\n"));
    }
    if let Some((t, p)) = matrix_codes(&c.id) {
        let _ = writeln!(out, "- **Target** {} · **peer** {}", md(&t), md(&p));
    }
    match &c.expected {
        Some(e) => {
            let _ = writeln!(
                out,
                "- **Expected:** {} ({})",
                md(&e.outcome.to_string()),
                tls_word(e.tls)
            );
            if !e.rationale.is_empty() {
                let _ = writeln!(out, "  - requirement: {}", md(&e.rationale));
            }
            if !e.refs.is_empty() {
                let refs: Vec<String> = e.refs.iter().map(|r| md(r)).collect();
                let _ = writeln!(out, "  - references: {}", refs.join("; "));
            }
            if let Some(src) = &e.source {
                let _ = writeln!(
                    out,
                    "  - another outcome deviates from: {}",
                    md(&src.label())
                );
            }
            for a in &e.alternatives {
                let _ = writeln!(out, "  - alternative: {}", md(a));
            }
        }
        None => out.push_str("- **Expected:** nothing (no expectation)\n"),
    }
    match &c.observed {
        Some(o) => {
            let _ = writeln!(
                out,
                "- **Observed:** {} ({})",
                md(&o.outcome.to_string()),
                tls_word(o.tls)
            );
            for f in &o.facts {
                let _ = writeln!(out, "  - {}", md(f));
            }
        }
        None => out.push_str("- **Observed:** nothing\n"),
    }
    out.push('\n');
    if c.transcript.is_empty() {
        // Our own sentence, not peer data: no escaping needed.
        let _ = writeln!(out, "{no_transcript}\n");
    } else {
        let _ = writeln!(out, "Transcript ({} lines):\n", c.transcript.len());
        let mut body = String::new();
        for e in &c.transcript {
            let _ = writeln!(body, "{}", transcript_line(e));
        }
        fenced(out, &body);
    }
}

/// Known deviations, new and worse cases and fixed entries of a run
/// measured against a baseline, apart from the grids.
fn baseline_section(out: &mut String, report: &Report) {
    let Some(b) = &report.baseline else {
        return;
    };
    let _ = writeln!(
        out,
        "## Baseline\n\nMeasured against `{}`{}: **gate {}**. {} known deviation(s), {} new or worse, {} changed, {} fixed.\n",
        b.file.replace('`', "'"),
        if b.strict { " (strict)" } else { "" },
        if b.passes() { "holds" } else { "failed" },
        b.known.len(),
        b.new.iter().filter(|c| c.gating).count(),
        b.changed.len(),
        b.fixed.len()
    );
    if !b.new.is_empty() || !b.changed.is_empty() {
        out.push_str("### New, worse or changed\n\n| case | verdict | baseline | message |\n|---|---|---|---|\n");
        for c in b.new.iter().chain(&b.changed) {
            let baseline = match (c.baseline_verdict, c.line) {
                (Some(v), Some(l)) => format!("{v} (line {l})"),
                _ if c.gating => "not listed".to_string(),
                _ => "not listed (not gating)".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md(&c.id),
                c.verdict,
                baseline,
                md(&c.message)
            );
        }
        out.push('\n');
    }
    if !b.fixed.is_empty() {
        out.push_str("### Fixed (remove from the baseline)\n\n| entry | line | verdict | cases now passing | reason |\n|---|---|---|---|---|\n");
        for f in &b.fixed {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                md(&f.entry),
                f.line,
                f.verdict,
                f.cases,
                md(&f.reason)
            );
        }
        out.push('\n');
    }
    if !b.known.is_empty() {
        out.push_str(
            "### Known deviations\n\n| case | verdict | entry | reason |\n|---|---|---|---|\n",
        );
        for k in &b.known {
            let reason = if k.reason.is_empty() {
                "(no reason given)".to_string()
            } else {
                md(&k.reason)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} (line {}) | {} |",
                md(&k.id),
                k.verdict,
                md(&k.entry),
                k.line,
                reason
            );
        }
        out.push('\n');
    }
}
