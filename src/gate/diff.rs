//! The difference between two runs (`s2spec diff OLD NEW`): new failures,
//! fixed cases, other verdict changes, message changes and changes of the
//! normalised transcript (the snapshot text), per case.
//!
//! NEW is worse than OLD when a case's verdict ranks higher ([`super::rank`]:
//! pass and not-applicable < non-strict < fail and error), when a case new in
//! NEW does not pass, or when a case of OLD is missing from NEW.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::baseline::first_message;
use super::{rank, worse};
use crate::report::{CaseResult, Report, Verdict, snapshot_text};

/// Transcript diff lines kept per case; a longer diff ends with a note.
pub const MAX_DIFF_LINES: usize = 120;
/// Transcript diffs shown in the Markdown form (a pull-request comment has
/// a size limit); the text and JSON forms keep them all.
pub const MAX_MARKDOWN_TRANSCRIPTS: usize = 10;
/// Rows per table in the Markdown form.
pub const MAX_MARKDOWN_ROWS: usize = 60;
/// The Markdown form stays under this many bytes (GitHub takes 65 536
/// characters per comment): transcript diffs go first, then table rows.
pub const MAX_MARKDOWN_BYTES: usize = 60_000;

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub file: String,
    pub target: String,
    pub policy: String,
    pub faults: Vec<String>,
    pub s2spec_version: String,
    pub started: String,
    pub cases: usize,
}

/// A case whose verdict or message changed; `None` where it is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub id: String,
    pub old: Option<Verdict>,
    pub new: Option<Verdict>,
    pub old_message: String,
    pub new_message: String,
}

/// A case whose normalised transcript changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptChange {
    pub id: String,
    /// A unified diff of the snapshot texts (at most [`MAX_DIFF_LINES`] lines).
    pub diff: String,
}

/// Everything that differs between two reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub old: Side,
    pub new: Side,
    /// Verdict worse than before, or a new case that does not pass.
    pub new_failures: Vec<Change>,
    /// Cases of OLD missing from NEW.
    pub missing: Vec<Change>,
    /// Cases that did not pass (non-strict, fail, error) and now pass.
    pub fixed: Vec<Change>,
    /// Every other verdict change (pass ⇄ not-applicable, fail ⇄ error,
    /// fail → non-strict, …) and new cases that pass.
    pub verdict_changes: Vec<Change>,
    /// Same verdict, different messages.
    pub message_changes: Vec<Change>,
    /// Cases whose transcripts both reports keep and whose normalised texts differ.
    pub transcript_changes: Vec<TranscriptChange>,
    /// Cases present in both whose transcript one of the reports left out.
    pub transcripts_not_compared: usize,
    /// Whether NEW is worse than OLD.
    pub worse: bool,
}

fn side(report: &Report, file: &str) -> Side {
    Side {
        file: file.to_string(),
        target: report.run.target.clone(),
        policy: report.run.policy.clone(),
        faults: report.run.faults.clone(),
        s2spec_version: report.run.s2spec_version.clone(),
        started: report.run.started.clone(),
        cases: report.cases.len(),
    }
}

fn change(id: &str, old: Option<&CaseResult>, new: Option<&CaseResult>) -> Change {
    let msg = |c: Option<&CaseResult>| c.map_or("", |c| first_message(&c.messages)).to_string();
    Change {
        id: id.to_string(),
        old: old.map(|c| c.verdict),
        new: new.map(|c| c.verdict),
        old_message: msg(old),
        new_message: msg(new),
    }
}

/// Compares two reports (`old_file`/`new_file` name them in the output).
pub fn diff(old: &Report, old_file: &str, new: &Report, new_file: &str) -> Diff {
    let olds: BTreeMap<&str, &CaseResult> = old.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    let news: BTreeMap<&str, &CaseResult> = new.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut d = Diff {
        old: side(old, old_file),
        new: side(new, new_file),
        new_failures: vec![],
        missing: vec![],
        fixed: vec![],
        verdict_changes: vec![],
        message_changes: vec![],
        transcript_changes: vec![],
        transcripts_not_compared: 0,
        worse: false,
    };
    let mut ids: Vec<&str> = olds.keys().chain(news.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        let (o, n) = (olds.get(id).copied(), news.get(id).copied());
        let c = change(id, o, n);
        match (o, n) {
            (Some(_), None) => d.missing.push(c),
            (None, Some(n)) if rank(n.verdict) > 0 => d.new_failures.push(c),
            (None, Some(_)) => d.verdict_changes.push(c),
            (Some(o), Some(n)) => {
                if worse(o.verdict, n.verdict) {
                    d.new_failures.push(c);
                } else if rank(o.verdict) > 0 && n.verdict == Verdict::Pass {
                    d.fixed.push(c);
                } else if o.verdict != n.verdict {
                    d.verdict_changes.push(c);
                } else if o.messages != n.messages {
                    d.message_changes.push(c);
                }
                if o.transcript.is_empty() != n.transcript.is_empty() {
                    d.transcripts_not_compared += 1;
                } else if !o.transcript.is_empty() {
                    let (a, b) = (transcript_text(o), transcript_text(n));
                    if a != b {
                        d.transcript_changes.push(TranscriptChange {
                            id: id.to_string(),
                            diff: unified(&a, &b),
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }
    d.worse = !d.new_failures.is_empty() || !d.missing.is_empty();
    d
}

/// The normalised transcript of a case: its snapshot text without the
/// header (id, verdict, outcomes), which the verdict lists already cover.
fn transcript_text(case: &CaseResult) -> String {
    let text = snapshot_text(case);
    match text.split_once("\n\n") {
        Some((_, streams)) => streams.to_string(),
        None => text,
    }
}

fn unified(a: &str, b: &str) -> String {
    let text = similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(2)
        .header("old", "new")
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= MAX_DIFF_LINES {
        return text;
    }
    let mut out = lines[..MAX_DIFF_LINES].join("\n");
    let _ = write!(
        out,
        "\n… {} more diff lines\n",
        lines.len() - MAX_DIFF_LINES
    );
    out
}

fn verdict_word(v: Option<Verdict>) -> &'static str {
    v.map_or("absent", Verdict::as_str)
}

fn side_line(s: &Side) -> String {
    let faults = if s.faults.is_empty() {
        String::new()
    } else {
        format!(", faults {}", s.faults.join(","))
    };
    format!(
        "{} (target {}, policy {}{faults}, {} cases, s2spec {})",
        s.file, s.target, s.policy, s.cases, s.s2spec_version
    )
}

impl Diff {
    /// A one-line verdict of the comparison.
    pub fn headline(&self) -> String {
        format!(
            "{} new failure(s), {} missing, {} fixed, {} other verdict change(s), {} message change(s), {} transcript change(s)",
            self.new_failures.len(),
            self.missing.len(),
            self.fixed.len(),
            self.verdict_changes.len(),
            self.message_changes.len(),
            self.transcript_changes.len()
        )
    }

    /// Plain text for a terminal or a CI log.
    pub fn text(&self) -> String {
        let mut out = format!(
            "old: {}\nnew: {}\n{}\n",
            side_line(&self.old),
            side_line(&self.new),
            self.headline()
        );
        for (title, list) in self.lists() {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{title} ({}):", list.len());
            for c in list {
                let _ = writeln!(
                    out,
                    "  {} -> {}  {}",
                    verdict_word(c.old),
                    verdict_word(c.new),
                    c.id
                );
                if !c.new_message.is_empty() && c.new_message != c.old_message {
                    let _ = writeln!(out, "      now: {}", c.new_message);
                }
                if !c.old_message.is_empty() && c.new_message != c.old_message {
                    let _ = writeln!(out, "      was: {}", c.old_message);
                }
            }
        }
        if !self.transcript_changes.is_empty() {
            let _ = writeln!(
                out,
                "\ntranscript changes ({}):",
                self.transcript_changes.len()
            );
            for t in &self.transcript_changes {
                let _ = writeln!(out, "  {}", t.id);
                for l in t.diff.lines() {
                    let _ = writeln!(out, "    {l}");
                }
            }
        }
        if self.transcripts_not_compared > 0 {
            let _ = writeln!(
                out,
                "\n{} case(s) not compared by transcript: one report left it out (--transcripts)",
                self.transcripts_not_compared
            );
        }
        let _ = writeln!(
            out,
            "\n{}",
            if self.worse {
                "NEW is worse than OLD"
            } else {
                "NEW is not worse than OLD"
            }
        );
        out
    }

    fn lists(&self) -> [(&'static str, &[Change]); 5] {
        [
            ("new failures", &self.new_failures),
            ("missing from new", &self.missing),
            ("fixed", &self.fixed),
            ("other verdict changes", &self.verdict_changes),
            ("message changes", &self.message_changes),
        ]
    }

    /// Markdown for a pull-request comment: a headline, a table per kind of
    /// change, transcript diffs folded; at most [`MAX_MARKDOWN_BYTES`].
    pub fn markdown(&self) -> String {
        for (rows, transcripts) in [
            (MAX_MARKDOWN_ROWS, MAX_MARKDOWN_TRANSCRIPTS),
            (MAX_MARKDOWN_ROWS, 0),
            (10, 0),
        ] {
            let md = self.markdown_with(rows, transcripts);
            if md.len() <= MAX_MARKDOWN_BYTES {
                return md;
            }
        }
        let md = self.markdown_with(0, 0);
        match md.char_indices().nth(MAX_MARKDOWN_BYTES / 4) {
            Some((cut, _)) if md.len() > MAX_MARKDOWN_BYTES => format!("{}\n…\n", &md[..cut]),
            _ => md,
        }
    }

    fn markdown_with(&self, max_rows: usize, max_transcripts: usize) -> String {
        let mut out = format!(
            "### s2spec: {}\n\n{}\n\n- old: {}\n- new: {}\n",
            if self.worse {
                "❌ worse than before"
            } else {
                "✅ nothing new broke"
            },
            md(&self.headline()),
            md(&side_line(&self.old)),
            md(&side_line(&self.new))
        );
        for (title, list) in self.lists() {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\n#### {} ({})\n\n| case | verdict | message |\n|---|---|---|",
                title,
                list.len()
            );
            for c in list.iter().take(max_rows) {
                let message = if c.new_message != c.old_message && !c.old_message.is_empty() {
                    format!("{} (was: {})", c.new_message, c.old_message)
                } else {
                    c.new_message.clone()
                };
                let _ = writeln!(
                    out,
                    "| `{}` | {} → {} | {} |",
                    code(&c.id),
                    verdict_word(c.old),
                    verdict_word(c.new),
                    md(&shorten(&message, 240))
                );
            }
            if list.len() > max_rows {
                let _ = writeln!(
                    out,
                    "\n… and {} more (`s2spec diff --format text`).",
                    list.len() - max_rows
                );
            }
        }
        if !self.transcript_changes.is_empty() {
            let _ = writeln!(
                out,
                "\n#### transcript changes ({})\n",
                self.transcript_changes.len()
            );
            for t in self.transcript_changes.iter().take(max_transcripts) {
                let _ = writeln!(
                    out,
                    "<details><summary><code>{}</code></summary>\n\n````diff\n{}````\n\n</details>\n",
                    html(&t.id),
                    t.diff.replace("````", "` ` ` `")
                );
            }
            let more = self
                .transcript_changes
                .len()
                .saturating_sub(max_transcripts);
            if more > 0 {
                let _ = writeln!(out, "… and {more} more (`s2spec diff --format text`).");
            }
        }
        out
    }
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Markdown-safe table text: no pipes or line breaks, HTML escaped.
fn md(s: &str) -> String {
    html(s).replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn code(s: &str) -> String {
    s.replace('`', "'").replace('|', "\\|")
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RunInfo;
    use crate::stream::{Dir, Entry, EntryKind};

    fn case(id: &str, verdict: Verdict, msg: &str, transcript: &[&str]) -> CaseResult {
        CaseResult {
            id: id.into(),
            family: "plain".into(),
            description: String::new(),
            verdict,
            expected: None,
            observed: None,
            messages: if msg.is_empty() {
                vec![]
            } else {
                vec![msg.into()]
            },
            deviations: vec![],
            duration_ms: 1,
            waited: Vec::new(),
            transcript: transcript
                .iter()
                .map(|t| Entry {
                    at: std::time::Duration::ZERO,
                    stream: 1,
                    dir: Dir::Sent,
                    tls: false,
                    kind: EntryKind::Xml,
                    text: (*t).into(),
                })
                .collect(),
        }
    }

    fn report(cases: Vec<CaseResult>) -> Report {
        Report::new(
            RunInfo {
                s2spec_version: "0.1.0".into(),
                target: "reference".into(),
                policy: "lync".into(),
                ..RunInfo::default()
            },
            cases,
        )
    }

    #[test]
    fn every_kind_of_change_is_sorted_into_its_list() {
        use Verdict::*;
        let old = report(vec![
            case("a/worse", Pass, "", &["<a/>"]),
            case("a/fixed", Fail, "broke", &[]),
            case("a/na", Pass, "", &[]),
            case("a/msg", Fail, "one", &[]),
            case("a/tx", Pass, "", &["<a/>", "<b/>"]),
            case("a/gone", Pass, "", &[]),
        ]);
        let new = report(vec![
            case("a/worse", Fail, "now broken", &["<a/>"]),
            case("a/fixed", Pass, "", &[]),
            case("a/na", NotApplicable, "cannot", &[]),
            case("a/msg", Fail, "two", &[]),
            case("a/tx", Pass, "", &["<a/>", "<c/>"]),
            case("a/added", NonStrict, "should", &[]),
        ]);
        let d = diff(&old, "old.json", &new, "new.json");
        let ids = |v: &[Change]| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&d.new_failures), ["a/added", "a/worse"]);
        assert_eq!(ids(&d.missing), ["a/gone"]);
        assert_eq!(ids(&d.fixed), ["a/fixed"]);
        assert_eq!(ids(&d.verdict_changes), ["a/na"]);
        assert_eq!(ids(&d.message_changes), ["a/msg"]);
        assert_eq!(d.transcript_changes.len(), 1);
        assert_eq!(d.transcript_changes[0].id, "a/tx");
        assert!(d.transcript_changes[0].diff.contains("-  peer -> tcp <b/>"));
        assert!(d.transcript_changes[0].diff.contains("+  peer -> tcp <c/>"));
        assert!(d.worse);
        let text = d.text();
        assert!(text.contains("pass -> fail  a/worse"), "{text}");
        assert!(text.contains("NEW is worse than OLD"));
        let md = d.markdown();
        assert!(
            md.contains("| `a/worse` | pass → fail | now broken |"),
            "{md}"
        );
        assert!(md.contains("❌"));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["worse"], true);
        assert_eq!(json["new_failures"][1]["old"], "pass");
    }

    #[test]
    fn same_report_is_not_worse_and_improvements_are_not_regressions() {
        use Verdict::*;
        let old = report(vec![case("a", Fail, "x", &[]), case("b", Pass, "", &[])]);
        assert!(!diff(&old, "o", &old, "o").worse);
        assert_eq!(
            diff(&old, "o", &old, "o").headline().matches(" 0 ").count(),
            5
        );
        let new = report(vec![
            case("a", NonStrict, "y", &[]),
            case("b", Pass, "", &[]),
        ]);
        let d = diff(&old, "o", &new, "n");
        assert!(!d.worse);
        assert_eq!(d.verdict_changes.len(), 1);
        assert!(d.markdown().contains("✅"));
    }

    #[test]
    fn markdown_fits_a_pull_request_comment() {
        let long = "x".repeat(2000);
        let old = report(
            (0..3000)
                .map(|i| case(&format!("c/{i}"), Verdict::Pass, "", &[&long, "<a/>"]))
                .collect(),
        );
        let new = report(
            (0..3000)
                .map(|i| case(&format!("c/{i}"), Verdict::Fail, &long, &[&long, "<b/>"]))
                .collect(),
        );
        let d = diff(&old, "o", &new, "n");
        assert_eq!(d.new_failures.len(), 3000);
        let md = d.markdown();
        assert!(md.len() <= MAX_MARKDOWN_BYTES, "{}", md.len());
        assert!(
            md.contains("… and 2940 more"),
            "rows were cut: {}",
            &md[..400]
        );
        assert!(
            md.contains("… and 2990 more (`s2spec diff"),
            "transcripts were cut"
        );
        assert!(md.starts_with("### s2spec: ❌"));
    }

    #[test]
    fn hostile_ids_cannot_break_the_markdown_table() {
        let old = report(vec![]);
        let new = report(vec![case(
            "a|b`<x>",
            Verdict::Fail,
            "m|n <script>\nsecond",
            &[],
        )]);
        let md = diff(&old, "o", &new, "n").markdown();
        assert!(
            md.contains("| `a\\|b'<x>` | absent → fail | m\\|n &lt;script&gt; |"),
            "{md}"
        );
    }
}
