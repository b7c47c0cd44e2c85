//! A case's outcome as a type. `report.json` has always carried it as a
//! phrase ("SASL over TLS", "refused", "configuration refused", "every step
//! met", …); the phrase stays the wire form, the enum is what the code compares.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::oracle::Outcome;
use crate::partner::Method;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CaseOutcome {
    /// A pairing or a stranger kept out: what the stream ended up as.
    Stream(Outcome),
    /// A stranger the target let in or connected to (SPEC §2).
    StrangerAccepted,
    /// A configuration case (SPEC §3): did the target refuse the invalid row?
    Configuration { refused: bool },
    /// A scripted scenario: the 1-based numbers of the steps not met.
    Steps { unmet: Vec<usize> },
}

impl CaseOutcome {
    pub const REFUSED: CaseOutcome = CaseOutcome::Stream(Outcome::Refused);

    pub fn is_refused(&self) -> bool {
        *self == CaseOutcome::REFUSED
    }
}

impl From<Outcome> for CaseOutcome {
    fn from(o: Outcome) -> CaseOutcome {
        CaseOutcome::Stream(o)
    }
}

impl fmt::Display for CaseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseOutcome::Stream(o) => write!(f, "{o}"),
            CaseOutcome::StrangerAccepted => f.write_str("accepted"),
            CaseOutcome::Configuration { refused: true } => f.write_str("configuration refused"),
            CaseOutcome::Configuration { refused: false } => f.write_str("configuration accepted"),
            CaseOutcome::Steps { unmet } if unmet.is_empty() => f.write_str("every step met"),
            CaseOutcome::Steps { unmet } => {
                let steps: Vec<String> = unmet.iter().map(|n| format!("step {n}")).collect();
                write!(f, "{} not met", steps.join(", "))
            }
        }
    }
}

/// A phrase that names no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an outcome (expected a method title, `refused`, `accepted`, `configuration refused|accepted`, `every step met` or `step N, … not met`)"
)]
pub struct UnknownOutcome(pub String);

impl FromStr for CaseOutcome {
    type Err = UnknownOutcome;

    fn from_str(s: &str) -> Result<CaseOutcome, UnknownOutcome> {
        let unknown = || UnknownOutcome(s.chars().take(80).collect());
        if let Some(m) = Method::PREFERENCE.into_iter().find(|m| m.title() == s) {
            return Ok(CaseOutcome::Stream(Outcome::Authenticated(m)));
        }
        Ok(match s {
            "refused" => CaseOutcome::REFUSED,
            "accepted" => CaseOutcome::StrangerAccepted,
            "configuration refused" => CaseOutcome::Configuration { refused: true },
            "configuration accepted" => CaseOutcome::Configuration { refused: false },
            "every step met" => CaseOutcome::Steps { unmet: Vec::new() },
            _ => {
                let list = s.strip_suffix(" not met").ok_or_else(unknown)?;
                let unmet = list
                    .split(", ")
                    .map(|step| step.strip_prefix("step ")?.parse::<usize>().ok())
                    .collect::<Option<Vec<usize>>>()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(unknown)?;
                CaseOutcome::Steps { unmet }
            }
        })
    }
}

impl Serialize for CaseOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CaseOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CaseOutcome, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phrase_round_trips() {
        let all = [
            CaseOutcome::Stream(Outcome::Authenticated(Method::SaslOverTls)),
            CaseOutcome::Stream(Outcome::Authenticated(Method::TlsDialback)),
            CaseOutcome::Stream(Outcome::Authenticated(Method::TcpDialback)),
            CaseOutcome::REFUSED,
            CaseOutcome::StrangerAccepted,
            CaseOutcome::Configuration { refused: true },
            CaseOutcome::Configuration { refused: false },
            CaseOutcome::Steps { unmet: vec![] },
            CaseOutcome::Steps { unmet: vec![2] },
            CaseOutcome::Steps {
                unmet: vec![1, 3, 10],
            },
        ];
        for o in all {
            let text = o.to_string();
            assert_eq!(text.parse::<CaseOutcome>(), Ok(o.clone()), "{text}");
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<CaseOutcome>(&json).unwrap(), o);
        }
        assert_eq!(
            CaseOutcome::Steps { unmet: vec![1, 3] }.to_string(),
            "step 1, step 3 not met"
        );
    }

    #[test]
    fn other_phrases_are_refused_with_the_phrase() {
        for bad in [
            "",
            "Refused",
            "step x not met",
            " not met",
            "step 1,step 2 not met",
            "sasl",
        ] {
            let err = bad.parse::<CaseOutcome>().unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert!(serde_json::from_str::<CaseOutcome>("\"nonsense\"").is_err());
        assert!(serde_json::from_str::<CaseOutcome>("3").is_err());
    }
}
