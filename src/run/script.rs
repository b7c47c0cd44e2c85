//! The interpreter of scripted scenarios: places the scenario's peer
//! servers and plays every step in order on real sockets. An unmet step is
//! one deviation with the step's own requirement (SPEC §4.6) and the play
//! goes on: later steps still run while the stream allows it, and those
//! that cannot (their connection is gone) are reported as skipped. The
//! verdict is the worst deviation; a MAY scenario whose only deviations are
//! informational is `not-applicable` (an absent capability).

mod error;
mod live;
mod peers;
mod steps;

use std::time::Duration;

use tokio::time::Instant;

use crate::report::{CaseOutcome, Expected, Observed, Verdict, Waited};
use crate::requirement::{Deviation, Severity, worst};
use crate::scenario::script::{Action, Level, Script, Step};
use crate::stream::Transcript;

use super::{Harness, Parts};
pub use error::PlayError;
use peers::Peers;
use steps::{Outcome, Run};

/// Time kept back from the case deadline for closing the connections and
/// stopping the peer servers, so that a slow scenario still reports what it
/// found instead of being cut off as a whole.
const FINISH_MARGIN: Duration = Duration::from_secs(2);

/// How one step went.
enum Played {
    Met(String),
    Unmet(Deviation),
    /// Not run: the connection it acts on is gone, or no time is left.
    Skipped(String),
}

impl Harness {
    pub(super) async fn script_case(
        &self,
        script: &Script,
        transcript: &Transcript,
        waited: &mut Vec<Waited>,
    ) -> Result<Parts, PlayError> {
        let until = Instant::now() + self.options.case_deadline.saturating_sub(FINISH_MARGIN);
        let peers = Peers::place(self, script, transcript).await?;
        let mut run = Run::new(self, script, peers);
        let mut played = Vec::new();
        let mut broken = Ok(());
        // Why the current connection cannot carry further steps.
        let mut gone: Option<String> = None;
        // A step skipped since the last connection opened: what it would have
        // sent is not there for a later step to watch for.
        let mut skipped: Option<usize> = None;
        for (n, step) in script.steps.iter().enumerate() {
            let n = n + 1;
            run.note(format!("step {n}: {}", step.source));
            let why = match (&gone, skipped) {
                (Some(why), _) if step.needs_connection() => Some(why.clone()),
                (_, Some(k)) if step.watches() => Some(format!(
                    "it watches for the effect of step {k}, which was skipped"
                )),
                _ => None,
            };
            if let Some(why) = why {
                let why = format!("step {n} skipped: {why}");
                run.note(why.clone());
                played.push((n, Played::Skipped(why)));
                skipped.get_or_insert(n);
                continue;
            }
            let left = until.saturating_duration_since(Instant::now());
            run.step_no = n;
            let outcome = match tokio::time::timeout(left, run.step(step)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    broken = Err(PlayError::Deadline {
                        step: n,
                        file: script.file.clone(),
                        line: step.line,
                        deadline: self.options.case_deadline,
                    });
                    break;
                }
            };
            match outcome {
                Ok(Outcome::Met(fact)) => {
                    if opens_connection(step) {
                        gone = None;
                        skipped = None;
                    }
                    played.push((n, Played::Met(fact)));
                }
                Ok(Outcome::Unmet { expected, observed }) => {
                    if let Some(why) = run.connection_gone(step) {
                        gone = Some(why);
                    }
                    let text = format!(
                        "step {n} at {}:{} `{}` not met: expected {expected}; observed {observed}",
                        script.file, step.line, step.source
                    );
                    let d = Deviation::new(step.requirement.clone(), self.options.policy, text);
                    played.push((n, Played::Unmet(d)));
                }
                Err(e) => {
                    broken = Err(PlayError::Step {
                        step: n,
                        file: script.file.clone(),
                        line: step.line,
                        error: e,
                    });
                    break;
                }
            }
        }
        let tls = run.any_tls();
        waited.extend(run.waits.drain(..).map(|(step, how_long, why)| Waited {
            step,
            ms: how_long.as_millis() as u64,
            why,
        }));
        run.finish().await;
        broken?;
        Ok(judge_script(script, tls, played))
    }
}

/// A step that, when met, leaves a fresh connection to act on.
fn opens_connection(step: &Step) -> bool {
    matches!(
        step.action,
        Action::Connect { .. }
            | Action::Authenticate {
                expect_success: true,
                ..
            }
    )
}

/// The verdict and report parts of a played scenario. Pure.
fn judge_script(script: &Script, tls: bool, played: Vec<(usize, Played)>) -> Parts {
    let expected = Expected {
        outcome: CaseOutcome::Steps { unmet: Vec::new() },
        tls,
        rationale: format!(
            "{} ({} {})",
            script.title,
            script.level.as_str(),
            script.file
        ),
        refs: script.refs.clone(),
        source: Some(script.requirement.clone()),
        alternatives: Vec::new(),
    };
    let mut facts = Vec::new();
    let mut deviations = Vec::new();
    let mut skipped = Vec::new();
    let mut unmet = Vec::new();
    for (n, p) in played {
        match p {
            Played::Met(fact) => facts.push(format!("step {n}: {fact}")),
            Played::Unmet(d) => {
                facts.push(format!("step {n} not met ({})", d.severity));
                unmet.push(n);
                deviations.push(d);
            }
            Played::Skipped(why) => {
                facts.push(why.clone());
                skipped.push(why);
            }
        }
    }
    let verdict = match worst(&deviations) {
        Some(Severity::Fail) => Verdict::Fail,
        Some(Severity::NonStrict) => Verdict::NonStrict,
        // Only informational deviations: an optional capability is absent.
        Some(Severity::Info) | None if !deviations.is_empty() && script.level == Level::May => {
            Verdict::NotApplicable
        }
        Some(Severity::Info) | None => Verdict::Pass,
    };
    let outcome = CaseOutcome::Steps { unmet };
    let mut messages: Vec<String> = deviations.iter().map(Deviation::message).collect();
    messages.extend(skipped);
    let observed = Observed {
        outcome,
        tls,
        facts,
        initiating: None,
    };
    (
        verdict,
        Some(expected),
        Some(observed),
        messages,
        deviations,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::Policy;
    use crate::requirement::{Keyword, Requirement};
    use crate::scenario::script::parse_script;

    const SCRIPT: &str = r#"
id = "rfc6120/11.1/example"
title = "t"
refs = ["RFC 6120 §11.1"]
level = "MUST"
stranger = true

[[step]]
connect = true
"#;

    fn script(level: &str) -> Script {
        parse_script(&SCRIPT.replace("\"MUST\"", level), "x.toml").unwrap()
    }

    fn unmet(k: Keyword) -> Played {
        Played::Unmet(Deviation::new(
            Requirement::protocol(k, "RFC 6120 §11.1"),
            Policy::Lync,
            "step",
        ))
    }

    #[test]
    fn the_verdict_is_the_worst_deviation_and_every_one_is_kept() {
        let s = script("\"MUST\"");
        let (v, _, o, m, d) = judge_script(
            &s,
            false,
            vec![
                (1, Played::Met("ok".into())),
                (2, unmet(Keyword::Should)),
                (3, unmet(Keyword::Must)),
                (4, Played::Skipped("step 4 skipped: gone".into())),
            ],
        );
        assert_eq!(v, Verdict::Fail);
        assert_eq!(d.len(), 2);
        assert_eq!(m.len(), 3, "{m:?}");
        assert!(
            m[0].starts_with("SHOULD (protocol, RFC 6120 §11.1)"),
            "{m:?}"
        );
        assert!(m[2].contains("skipped"));
        assert_eq!(o.unwrap().outcome.to_string(), "step 2, step 3 not met");
        let (v, ..) = judge_script(&s, false, vec![(1, unmet(Keyword::Should))]);
        assert_eq!(v, Verdict::NonStrict);
    }

    #[test]
    fn skipped_steps_alone_do_not_fail_and_information_never_does() {
        let s = script("\"MUST\"");
        let (v, ..) = judge_script(&s, false, vec![(1, Played::Met("ok".into()))]);
        assert_eq!(v, Verdict::Pass);
        let (v, _, _, m, _) = judge_script(&s, false, vec![(1, unmet(Keyword::May))]);
        assert_eq!((v, m.len()), (Verdict::Pass, 1));
        // A MAY scenario whose capability is absent.
        let may = script("\"MAY\"");
        let (v, ..) = judge_script(&may, false, vec![(1, unmet(Keyword::May))]);
        assert_eq!(v, Verdict::NotApplicable);
        let (v, ..) = judge_script(&may, false, vec![(1, Played::Met("ok".into()))]);
        assert_eq!(v, Verdict::Pass);
    }
}
