//! A baseline of known deviations: the TOML file `s2spec baseline` writes
//! from a report, and the judgement of a run against it.
//!
//! ```toml
//! target = "prosody"          # optional: refuse runs of another target
//! policy = "lync"             # optional: refuse runs of another policy
//!
//! [[known]]
//! case = "matrix/in/t-RO1/*/cn-only/*"   # an id, or a pattern (gate::matches)
//! verdict = "fail"                       # non-strict | not-applicable | fail | error
//! message = "first message line when the baseline was made"
//! reason = "why this is accepted"
//! ```
//!
//! A case is covered by the entry naming its id exactly, else by the first
//! pattern entry (in file order) that matches it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{is_pattern, matches, worse};
use crate::report::{BaselineOutcome, FixedEntry, GateCase, KnownCase, Report, Verdict};

/// A problem with a baseline file, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct BaselineError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One `[[known]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// A case id or a pattern.
    pub case: String,
    pub verdict: Verdict,
    pub message: String,
    pub reason: String,
    /// Line of the entry's `case` key (1-based), for messages.
    pub line: usize,
}

/// A loaded baseline file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Baseline {
    pub target: Option<String>,
    pub policy: Option<String>,
    pub entries: Vec<Entry>,
    /// Lines of `target` and `policy`, for mismatch messages.
    pub target_line: usize,
    pub policy_line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    target: Option<Spanned<String>>,
    #[serde(default)]
    policy: Option<Spanned<String>>,
    #[serde(default)]
    known: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    case: Spanned<String>,
    verdict: Spanned<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    reason: String,
}

#[derive(Serialize)]
struct OutFile<'a> {
    target: &'a str,
    policy: &'a str,
    known: Vec<OutEntry<'a>>,
}

#[derive(Serialize)]
struct OutEntry<'a> {
    case: &'a str,
    verdict: &'a str,
    message: &'a str,
    reason: &'a str,
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Baseline {
    /// Parses a baseline file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Baseline, BaselineError> {
        let at = |offset: usize, message: String| {
            let (line, column) = line_col(text, offset);
            BaselineError {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset, e.message().trim().to_string())
        })?;
        let mut out = Baseline::default();
        if let Some(t) = raw.target {
            out.target_line = line_col(text, t.span().start).0;
            out.target = Some(t.into_inner());
        }
        if let Some(p) = raw.policy {
            out.policy_line = line_col(text, p.span().start).0;
            out.policy = Some(p.into_inner());
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for e in raw.known {
            let case_at = e.case.span().start;
            let line = line_col(text, case_at).0;
            let case = e.case.into_inner();
            if case.trim().is_empty() {
                return Err(at(case_at, "`case` is empty".into()));
            }
            if let Some(first) = seen.insert(case.clone(), line) {
                return Err(at(
                    case_at,
                    format!("`{case}` is listed twice (first on line {first})"),
                ));
            }
            let verdict_at = e.verdict.span().start;
            let spelled = e.verdict.into_inner();
            let verdict = match Verdict::ALL.iter().find(|v| v.as_str() == spelled) {
                Some(Verdict::Pass) => {
                    return Err(at(
                        verdict_at,
                        "verdict `pass`: a passing case needs no entry".into(),
                    ));
                }
                Some(v) => *v,
                None => {
                    return Err(at(
                        verdict_at,
                        format!(
                            "unknown verdict `{spelled}` (expected one of: non-strict, not-applicable, fail, error)"
                        ),
                    ));
                }
            };
            out.entries.push(Entry {
                case,
                verdict,
                message: e.message,
                reason: e.reason,
                line,
            });
        }
        Ok(out)
    }

    /// Reads and parses a baseline file.
    pub fn load(path: &std::path::Path) -> Result<Baseline, BaselineError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| BaselineError {
            file: file.clone(),
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
        })?;
        Baseline::parse(&text, &file)
    }

    /// The entry covering case `id`: its exact entry, else the first
    /// matching pattern.
    pub fn entry_for(&self, id: &str) -> Option<(usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.case == id)
            .or_else(|| {
                self.entries
                    .iter()
                    .enumerate()
                    .find(|(_, e)| is_pattern(&e.case) && matches(&e.case, id))
            })
    }

    /// Refuses a report of another target or policy than the baseline names.
    pub fn check_run(&self, report: &Report, file: &str) -> Result<(), BaselineError> {
        self.check(&report.run.target, &report.run.policy, file)
    }

    /// Refuses a run of another target or policy than the baseline names.
    pub fn check(&self, target: &str, policy: &str, file: &str) -> Result<(), BaselineError> {
        let mismatch = |line: usize, what: &str, ours: &str, theirs: &str| BaselineError {
            file: file.to_string(),
            line,
            column: 1,
            message: format!("the baseline is for {what} `{ours}`, the run's is `{theirs}`"),
        };
        if let Some(t) = &self.target
            && t != target
        {
            return Err(mismatch(self.target_line, "target", t, target));
        }
        if let Some(p) = &self.policy
            && p != policy
        {
            return Err(mismatch(self.policy_line, "policy", p, policy));
        }
        Ok(())
    }
}

/// The first line of a case's first message (what a baseline records).
pub fn first_message(messages: &[String]) -> &str {
    messages
        .first()
        .and_then(|m| m.lines().next())
        .unwrap_or("")
}

/// The baseline file for `report`: every non-passing case with its
/// verdict, first message and an empty reason to fill in. `source` names
/// the report in the header comment.
pub fn baseline_toml(report: &Report, source: &str) -> String {
    let known: Vec<OutEntry> = report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .map(|c| OutEntry {
            case: &c.id,
            verdict: c.verdict.as_str(),
            message: first_message(&c.messages),
            reason: "",
        })
        .collect();
    let count = known.len();
    let body = toml::to_string(&OutFile {
        target: &report.run.target,
        policy: &report.run.policy,
        known,
    })
    .unwrap_or_else(|e| format!("# cannot serialise the baseline: {e}\n"));
    format!(
        "# s2spec baseline: {count} known deviation(s) of target `{}` (policy {}, s2spec {}),\n\
         # made from {source}.\n\
         # Fill in every `reason`. `case` may be a pattern: `*` matches within one segment\n\
         # of the id, `**` across segments (e.g. \"matrix/in/t-RO1/*/cn-only/*\").\n\
         # `s2spec run --baseline FILE` exits 0 while every non-passing case is listed here\n\
         # with its verdict, 1 on anything new or worse.\n\n{body}",
        report.run.target, report.run.policy, report.run.s2spec_version
    )
}

/// Judges `report` against `baseline` (see [`BaselineOutcome`]).
pub fn judge(baseline: &Baseline, report: &Report, file: &str, strict: bool) -> BaselineOutcome {
    let mut out = BaselineOutcome {
        file: file.to_string(),
        strict,
        ..BaselineOutcome::default()
    };
    // Per entry: cases matched, and how many of them did not pass.
    let mut matched = vec![(0usize, 0usize); baseline.entries.len()];
    for case in &report.cases {
        let entry = baseline.entry_for(&case.id);
        if let Some((i, _)) = entry {
            matched[i].0 += 1;
        }
        if case.verdict == Verdict::Pass {
            continue;
        }
        let message = first_message(&case.messages).to_string();
        match entry {
            Some((i, e)) => {
                matched[i].1 += 1;
                if e.verdict == case.verdict {
                    out.known.push(KnownCase {
                        id: case.id.clone(),
                        verdict: case.verdict,
                        entry: e.case.clone(),
                        line: e.line,
                        reason: e.reason.clone(),
                        message_was: (!e.message.is_empty() && e.message != message)
                            .then(|| e.message.clone()),
                    });
                } else {
                    let gate = GateCase {
                        id: case.id.clone(),
                        verdict: case.verdict,
                        baseline_verdict: Some(e.verdict),
                        line: Some(e.line),
                        message,
                        gating: worse(e.verdict, case.verdict),
                    };
                    if gate.gating {
                        out.new.push(gate);
                    } else {
                        out.changed.push(gate);
                    }
                }
            }
            None => out.new.push(GateCase {
                id: case.id.clone(),
                verdict: case.verdict,
                baseline_verdict: None,
                line: None,
                message,
                // Not applicable is no deviation: listed, never gating.
                gating: case.verdict != Verdict::NotApplicable,
            }),
        }
    }
    for (e, (cases, failing)) in baseline.entries.iter().zip(matched) {
        if cases > 0 && failing == 0 {
            out.fixed.push(FixedEntry {
                entry: e.case.clone(),
                line: e.line,
                verdict: e.verdict,
                reason: e.reason.clone(),
                cases,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CaseResult, RunInfo};

    fn case(id: &str, verdict: Verdict) -> CaseResult {
        CaseResult {
            id: id.into(),
            family: "plain".into(),
            description: String::new(),
            verdict,
            expected: None,
            observed: None,
            messages: if verdict == Verdict::Pass {
                vec![]
            } else {
                vec![format!("{verdict} of {id}\nmore")]
            },
            deviations: vec![],
            duration_ms: 1,
            waited: Vec::new(),
            transcript: vec![],
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
    fn a_report_round_trips_through_its_baseline() {
        let r = report(vec![
            case("a/b/c", Verdict::Pass),
            case("a/b/d", Verdict::Fail),
            case("a/x/\"quoted\"", Verdict::NonStrict),
            case("a/b/e", Verdict::NotApplicable),
        ]);
        let text = baseline_toml(&r, "r.json");
        let b = Baseline::parse(&text, "b.toml").unwrap();
        assert_eq!(b.entries.len(), 3);
        assert_eq!(b.target.as_deref(), Some("reference"));
        assert_eq!(b.entries[0].message, "fail of a/b/d");
        assert!(b.entries.iter().all(|e| e.reason.is_empty()));
        let out = judge(&b, &r, "b.toml", false);
        assert_eq!(out.known.len(), 3);
        assert!(out.new.is_empty() && out.fixed.is_empty() && out.changed.is_empty());
        assert!(out.passes());
    }

    #[test]
    fn new_worse_changed_and_fixed() {
        let text = "[[known]]\ncase = \"m/1\"\nverdict = \"non-strict\"\n\n\
                    [[known]]\ncase = \"m/2\"\nverdict = \"fail\"\n\n\
                    [[known]]\ncase = \"p/*\"\nverdict = \"fail\"\nreason = \"vendor bug 12\"\n\n\
                    [[known]]\ncase = \"gone/*\"\nverdict = \"fail\"\n";
        let b = Baseline::parse(text, "b.toml").unwrap();
        let r = report(vec![
            case("m/1", Verdict::Fail),          // worsened
            case("m/2", Verdict::NonStrict),     // improved, not passing
            case("p/x", Verdict::Fail),          // known through the pattern
            case("p/y", Verdict::Pass),          // pattern partly passing
            case("q/1", Verdict::Fail),          // new
            case("q/2", Verdict::NotApplicable), // new, not gating
        ]);
        let out = judge(&b, &r, "b.toml", false);
        let ids = |v: &[GateCase]| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&out.new), ["m/1", "q/1", "q/2"]);
        assert_eq!(out.new[0].baseline_verdict, Some(Verdict::NonStrict));
        assert_eq!(out.new[0].line, Some(2));
        assert!(!out.new[2].gating);
        assert_eq!(ids(&out.changed), ["m/2"]);
        assert_eq!(out.known.len(), 1);
        assert_eq!(out.known[0].reason, "vendor bug 12");
        assert!(
            out.fixed.is_empty(),
            "gone/* matches no case: not run, not fixed"
        );
        assert!(!out.passes());

        let r = report(vec![case("m/1", Verdict::Pass), case("m/2", Verdict::Fail)]);
        let out = judge(&b, &r, "b.toml", false);
        assert_eq!(out.fixed.len(), 1);
        assert_eq!(out.fixed[0].entry, "m/1");
        assert!(out.passes());
        assert!(
            !judge(&b, &r, "b.toml", true).passes(),
            "strict: fixed fails"
        );
    }

    #[test]
    fn exact_entries_win_over_patterns() {
        let text = "[[known]]\ncase = \"p/*\"\nverdict = \"fail\"\n\
                    [[known]]\ncase = \"p/x\"\nverdict = \"non-strict\"\n";
        let b = Baseline::parse(text, "b.toml").unwrap();
        assert_eq!(b.entry_for("p/x").map(|(i, _)| i), Some(1));
        assert_eq!(b.entry_for("p/y").map(|(i, _)| i), Some(0));
        assert_eq!(b.entry_for("q/y").map(|(i, _)| i), None);
    }

    #[test]
    fn bad_files_name_file_line_and_column() {
        let err = |t: &str| Baseline::parse(t, "b.toml").unwrap_err().to_string();
        assert!(
            err("[[known]]\ncase = \"a\"\nverdict = \"broken\"\n")
                .starts_with("b.toml:3:11: unknown verdict `broken`"),
            "{}",
            err("[[known]]\ncase = \"a\"\nverdict = \"broken\"\n")
        );
        assert!(err("[[known]]\ncase = \"a\"\nverdict = \"pass\"\n").contains("b.toml:3:"));
        let dup = err(
            "[[known]]\ncase = \"a\"\nverdict = \"fail\"\n[[known]]\ncase = \"a\"\nverdict = \"fail\"\n",
        );
        assert!(
            dup.starts_with("b.toml:5:8: `a` is listed twice (first on line 2)"),
            "{dup}"
        );
        let unknown = err("\n[[known]]\ncase = \"a\"\nverdict = \"fail\"\nwhy = 1\n");
        assert!(unknown.starts_with("b.toml:5:"), "{unknown}");
        assert!(unknown.contains("why"), "{unknown}");
        let syntax = err("[[known]\n");
        assert!(syntax.starts_with("b.toml:1:"), "{syntax}");
        let missing = err("[[known]]\ncase = \"a\"\n");
        assert!(missing.contains("verdict"), "{missing}");
        assert!(missing.starts_with("b.toml:1:"), "{missing}");
        assert!(err("[[known]]\ncase = \"\"\nverdict = \"fail\"\n").contains("`case` is empty"));
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("x", 99), (1, 2));
    }
}
