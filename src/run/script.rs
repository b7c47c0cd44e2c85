//! The interpreter of scripted scenarios: places the scenario's peer
//! servers, plays the steps in order on real sockets and judges by the
//! scenario's level — MUST fails on the first unmet step, SHOULD makes it
//! `non-strict`, MAY makes it `not-applicable` (an absent capability).

mod live;
mod peers;
mod steps;

use crate::report::{Expected, Observed, Verdict};
use crate::scenario::script::{Level, Script};
use crate::stream::Transcript;

use super::{Harness, Parts};
use peers::Peers;
use steps::{Outcome, Run};

impl Harness {
    pub(super) async fn script_case(
        &self,
        script: &Script,
        transcript: &Transcript,
    ) -> Result<Parts, String> {
        let peers = Peers::place(self, script, transcript).await?;
        let mut run = Run::new(self, script, peers);
        let mut facts = Vec::new();
        let mut unmet = None;
        let mut played = Ok(());
        for (n, step) in script.steps.iter().enumerate() {
            run.note(format!("step {}: {}", n + 1, step.source));
            match run.step(step).await {
                Ok(Outcome::Met(fact)) => facts.push(format!("step {}: {fact}", n + 1)),
                Ok(Outcome::Unmet { expected, observed }) => {
                    unmet = Some((n + 1, step, expected, observed));
                    break;
                }
                Err(e) => {
                    played = Err(format!(
                        "step {} ({}:{}): {e}",
                        n + 1,
                        script.file,
                        step.line
                    ));
                    break;
                }
            }
        }
        let tls = run.any_tls();
        run.finish().await;
        played?;
        let expected = Expected {
            outcome: "every step met".into(),
            tls,
            rationale: format!(
                "{} ({} {})",
                script.title,
                script.level.as_str(),
                script.file
            ),
            refs: script.refs.clone(),
            source: None,
            alternatives: Vec::new(),
        };
        let Some((n, step, want, got)) = unmet else {
            let observed = Observed {
                outcome: "every step met".into(),
                tls,
                facts,
            };
            return Ok(Parts::new(
                Verdict::Pass,
                Some(expected),
                Some(observed),
                vec![],
            ));
        };
        let verdict = match script.level {
            Level::Must => Verdict::Fail,
            Level::Should => Verdict::NonStrict,
            Level::May => Verdict::NotApplicable,
        };
        let message = format!(
            "{} ({}): step {n} at {}:{} `{}` not met: expected {want}; observed {got}",
            script.level.as_str(),
            script.refs.join(", "),
            script.file,
            step.line,
            step.source,
        );
        facts.push(format!("step {n} not met: {got}"));
        let observed = Observed {
            outcome: format!("step {n} not met"),
            tls,
            facts,
        };
        Ok(Parts::new(
            verdict,
            Some(expected),
            Some(observed),
            vec![message],
        ))
    }
}
