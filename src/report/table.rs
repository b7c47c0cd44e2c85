//! The plain-text summary printed at the end of a run: counts per family and
//! verdict, then the failing cases. No colours (it also goes to log files)
//! and at most 80 columns, except for case ids, which stay whole so they can
//! be pasted into a filter.

use std::fmt::Write as _;

use super::{CaseResult, Report, Verdict};

/// Failing cases listed by [`summary_table`].
pub const MAX_FAILING_SHOWN: usize = 20;

/// Width the table and the failure lines keep within.
const WIDTH: usize = 80;

/// Families of the matrix in the order a reader expects them (SPEC §4.5 /
/// `scenarios/matrix.toml`); any other family follows, alphabetically.
const FAMILY_ORDER: [&str; 4] = ["plain", "certificates", "dns", "config"];

/// Longest family name shown whole; longer ones are shortened so the table
/// keeps to 80 columns.
const FAMILY_WIDTH_MAX: usize = 16;

/// [`summary_table_with`] listing at most [`MAX_FAILING_SHOWN`] failing cases.
pub fn summary_table(report: &Report) -> String {
    summary_table_with(report, MAX_FAILING_SHOWN)
}

/// A header line, one row per family with counts per verdict, a total row,
/// and the `fail`/`error` cases (at most `max_failing`, then `… and K more`)
/// with the first line of their first message.
pub fn summary_table_with(report: &Report, max_failing: usize) -> String {
    let mut out = String::new();
    header(report, &mut out);
    out.push('\n');
    counts_table(report, &mut out);
    failing_list(&report.cases, max_failing, &mut out);
    out
}

fn header(report: &Report, out: &mut String) {
    let run = &report.run;
    let _ = writeln!(
        out,
        "s2spec {}: target {}, policy {}, {} case{} in {}",
        run.s2spec_version,
        run.target,
        run.policy,
        report.cases.len(),
        if report.cases.len() == 1 { "" } else { "s" },
        duration(run.duration_ms)
    );
    if !run.faults.is_empty() {
        let _ = writeln!(out, "faults: {}", run.faults.join(", "));
    }
    if run.interrupted {
        let _ = writeln!(out, "{}", super::INTERRUPTED_NOTE);
    }
}

fn counts_table(report: &Report, out: &mut String) {
    // One row per family: counts in Verdict::ALL order.
    let mut rows: Vec<(&str, [usize; 5])> = Vec::new();
    for case in &report.cases {
        let i = match rows.iter().position(|(f, _)| *f == case.family) {
            Some(i) => i,
            None => {
                rows.push((&case.family, [0; 5]));
                rows.len() - 1
            }
        };
        rows[i].1[verdict_index(case.verdict)] += 1;
    }
    rows.sort_by(|a, b| family_key(a.0).cmp(&family_key(b.0)));
    let mut total = [0usize; 5];
    for (_, counts) in &rows {
        for (t, c) in total.iter_mut().zip(counts) {
            *t += c;
        }
    }

    let family_width = rows
        .iter()
        .map(|(f, _)| f.chars().count())
        .chain(["family".len(), "total".len()])
        .max()
        .unwrap_or(0)
        .min(FAMILY_WIDTH_MAX);
    let mut headers: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
    headers.push("total");
    // A column is as wide as its header or its widest number.
    let widest_number = total.iter().sum::<usize>().to_string().len();
    let widths: Vec<usize> = headers.iter().map(|h| h.len().max(widest_number)).collect();

    let line = |out: &mut String, first: &str, cells: &[String]| {
        let _ = write!(out, "{:<family_width$}", fit(first, family_width));
        for (cell, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    };
    let numbers = |counts: &[usize; 5]| -> Vec<String> {
        counts
            .iter()
            .map(|c| c.to_string())
            .chain([counts.iter().sum::<usize>().to_string()])
            .collect()
    };

    line(
        out,
        "family",
        &headers.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    );
    line(
        out,
        &"-".repeat(family_width),
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    );
    for (family, counts) in &rows {
        line(out, family, &numbers(counts));
    }
    line(out, "total", &numbers(&total));
    // Where the verdicts come from (SPEC §4.6), when anything did not pass.
    let s = &report.summary;
    if s.fail > 0 {
        let _ = writeln!(out, "fail by source:       {}", s.fail_by_source.line());
    }
    if s.non_strict > 0 {
        let _ = writeln!(
            out,
            "non-strict by source: {}",
            s.non_strict_by_source.line()
        );
    }
}

fn failing_list(cases: &[CaseResult], max_failing: usize, out: &mut String) {
    let failing: Vec<&CaseResult> = cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Error))
        .collect();
    if failing.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nfailing ({}):", failing.len());
    // `  error  ` : the verdict column is as wide as the widest verdict listed.
    const INDENT: usize = 2 + 5 + 2;
    for case in failing.iter().take(max_failing) {
        let _ = writeln!(out, "  {:<5}  {}", case.verdict.as_str(), case.id);
        if let Some(line) = case.messages.first().and_then(|m| m.lines().next()) {
            let line = line.trim();
            if !line.is_empty() {
                let _ = writeln!(
                    out,
                    "{:INDENT$}{}",
                    "",
                    fit(line, WIDTH.saturating_sub(INDENT + 1))
                );
            }
        }
    }
    if failing.len() > max_failing {
        let _ = writeln!(out, "  … and {} more", failing.len() - max_failing);
    }
}

fn verdict_index(v: Verdict) -> usize {
    Verdict::ALL.iter().position(|x| *x == v).unwrap_or(0)
}

fn family_key(family: &str) -> (usize, &str) {
    let rank = FAMILY_ORDER
        .iter()
        .position(|f| *f == family)
        .unwrap_or(FAMILY_ORDER.len());
    (rank, family)
}

/// `s` shortened to `width` characters, ending in `…` when cut. Control
/// characters become `?`: messages may quote what a peer sent, and that must
/// not reach the terminal as escape sequences.
fn fit(s: &str, width: usize) -> String {
    let clean = s.chars().map(|c| if c.is_control() { '?' } else { c });
    if s.chars().count() <= width {
        return clean.collect();
    }
    let mut cut: String = clean.take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn duration(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{} min {} s", s / 60, s % 60)
    }
}
