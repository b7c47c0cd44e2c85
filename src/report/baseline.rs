//! What a baseline of known deviations made of a run (`s2spec run
//! --baseline`, `s2spec merge --baseline`): plain data every rendering shows
//! in a section of its own. The judgement itself is `gate::baseline`.

use serde::{Deserialize, Serialize};

use super::Verdict;

/// The run measured against a baseline file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineOutcome {
    /// The baseline file as given on the command line.
    pub file: String,
    /// `--baseline-strict`: fixed and changed entries fail the gate too.
    #[serde(default)]
    pub strict: bool,
    /// Non-passing cases the baseline covers with their verdict.
    #[serde(default)]
    pub known: Vec<KnownCase>,
    /// Non-passing cases the baseline does not cover, or covers with a
    /// better verdict than the run's (worsened): these fail the gate.
    #[serde(default)]
    pub new: Vec<GateCase>,
    /// Cases whose entry names another verdict that is not better: improved
    /// but not passing, or fail ⇄ error. Fail the gate only when strict.
    #[serde(default)]
    pub changed: Vec<GateCase>,
    /// Entries every one of whose cases now passes.
    #[serde(default)]
    pub fixed: Vec<FixedEntry>,
}

impl BaselineOutcome {
    /// Whether the gate holds: nothing new or worse, and with `strict`
    /// nothing fixed or changed either.
    pub fn holds(&self) -> bool {
        !self.new.iter().any(|c| c.gating)
    }

    /// Whether the gate holds once `strict` is taken into account.
    pub fn passes(&self) -> bool {
        self.holds() && !(self.strict && (!self.fixed.is_empty() || !self.changed.is_empty()))
    }
}

/// A non-passing case the baseline expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownCase {
    pub id: String,
    pub verdict: Verdict,
    /// The entry's `case` (an id or a pattern) and its line in the file.
    pub entry: String,
    pub line: usize,
    pub reason: String,
    /// The first message line of the baseline entry when the run's differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_was: Option<String>,
}

/// A case the baseline did not expect as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCase {
    pub id: String,
    pub verdict: Verdict,
    /// The verdict of the baseline entry that covers the case, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_verdict: Option<Verdict>,
    /// The entry's line in the baseline file, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The run's first message line.
    #[serde(default)]
    pub message: String,
    /// Whether it fails the gate by itself (new or worsened non-strict,
    /// fail or error; a new not-applicable is only listed).
    #[serde(default)]
    pub gating: bool,
}

/// A baseline entry that no longer matches a non-passing case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedEntry {
    pub entry: String,
    pub line: usize,
    pub verdict: Verdict,
    pub reason: String,
    /// How many cases of the run the entry matches (all of them pass).
    pub cases: usize,
}

impl BaselineOutcome {
    /// The known deviation recorded for case `id`, if any.
    pub fn known_case(&self, id: &str) -> Option<&KnownCase> {
        self.known.iter().find(|k| k.id == id)
    }

    /// A few lines for the end of a run: counts, then every new, changed
    /// and fixed entry, then whether the gate holds.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let gating = self.new.iter().filter(|c| c.gating).count();
        let mut out = format!(
            "baseline {}: {} known deviation(s), {} new or worse, {} changed, {} fixed\n",
            self.file,
            self.known.len(),
            gating,
            self.changed.len(),
            self.fixed.len()
        );
        for c in &self.new {
            let label = match (c.gating, c.baseline_verdict) {
                (false, _) => "new (not gating)",
                (true, None) => "new",
                (true, Some(_)) => "worse",
            };
            let _ = writeln!(out, "  {label}: {} {}{}", c.verdict, c.id, was(c));
            if !c.message.is_empty() {
                let _ = writeln!(out, "      {}", c.message);
            }
        }
        for c in &self.changed {
            let _ = writeln!(out, "  changed: {} {}{}", c.verdict, c.id, was(c));
        }
        for k in &self.known {
            if let Some(m) = &k.message_was {
                let _ = writeln!(
                    out,
                    "  known, message changed: {} (line {}; baseline: {m})",
                    k.id, k.line
                );
            }
        }
        for f in &self.fixed {
            let _ = writeln!(
                out,
                "  fixed: {} (line {}, {}): its {} case(s) pass; remove the entry",
                f.entry, f.line, f.verdict, f.cases
            );
        }
        let _ = writeln!(
            out,
            "gate: {}",
            if self.passes() {
                "holds (nothing new or worse)"
            } else if !self.holds() {
                "FAILED (new or worse cases)"
            } else {
                "FAILED (--baseline-strict: fixed or changed entries; prune the baseline)"
            }
        );
        out
    }
}

/// `(baseline: VERDICT, line N)` for a case an entry covers.
pub(crate) fn was(c: &GateCase) -> String {
    match (c.baseline_verdict, c.line) {
        (Some(v), Some(l)) => format!(" (baseline: {v}, line {l})"),
        _ => String::new(),
    }
}
