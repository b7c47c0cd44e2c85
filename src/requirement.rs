//! Where a verdict comes from (SPEC §4.6): every expectation that can fail a
//! case names its source kind, its reference and, for a protocol rule, the
//! RFC 2119 keyword. The severity of an unmet expectation follows from that
//! and the policy profile alone, so no check picks "fail" or "non-strict" by
//! hand. Pure.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::oracle::Policy;

kebab_enum! {
    /// What kind of text an expectation rests on.
    SourceKind {
        /// An RFC or XEP requirement, cited with its keyword.
        Protocol = "protocol",
        /// The target's own partner configuration (SPEC §4.1–§4.3, §7: the
        /// Lync documentation of what a setting means).
        Configuration = "configuration",
        /// A choice of the policy profile that the RFCs leave open (SPEC §4.4).
        Policy = "policy",
    }
}

kebab_enum! {
    /// RFC 2119 keywords, spelled as the RFCs print them.
    Keyword {
        Must = "MUST",
        MustNot = "MUST NOT",
        Required = "REQUIRED",
        Shall = "SHALL",
        ShallNot = "SHALL NOT",
        Should = "SHOULD",
        ShouldNot = "SHOULD NOT",
        Recommended = "RECOMMENDED",
        May = "MAY",
        Optional = "OPTIONAL",
    }
}

impl Keyword {
    /// What an unmet requirement with this keyword does to a case (SPEC §4.6).
    pub fn severity(self) -> Severity {
        match self {
            Keyword::Must
            | Keyword::MustNot
            | Keyword::Required
            | Keyword::Shall
            | Keyword::ShallNot => Severity::Fail,
            Keyword::Should | Keyword::ShouldNot | Keyword::Recommended => Severity::NonStrict,
            Keyword::May | Keyword::Optional => Severity::Info,
        }
    }
}

kebab_enum! {
    /// What an unmet expectation does to the case's verdict.
    Severity {
        /// The case fails.
        Fail = "fail",
        /// The case is non-strict (a SHOULD, or a `lync` policy choice).
        NonStrict = "non-strict",
        /// Reported, never a failure (a MAY: an optional capability).
        Info = "info",
    }
}

/// The text one expectation rests on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requirement {
    pub source: SourceKind,
    /// The protocol keyword; `None` for configuration and policy rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<Keyword>,
    /// The section it rests on, e.g. `RFC 6120 §5.4.3.3` or `SPEC §4.4`.
    #[serde(rename = "ref")]
    pub reference: String,
}

impl Requirement {
    /// An RFC/XEP requirement with its keyword.
    pub fn protocol(keyword: Keyword, reference: impl Into<String>) -> Requirement {
        Requirement {
            source: SourceKind::Protocol,
            keyword: Some(keyword),
            reference: reference.into(),
        }
    }

    /// A protocol text that names no RFC 2119 keyword (a descriptive schema,
    /// a table of guidance, an RFC that does not update the one the target
    /// implements): unmet, the case is non-strict at most.
    pub fn advisory(reference: impl Into<String>) -> Requirement {
        Requirement {
            source: SourceKind::Protocol,
            keyword: None,
            reference: reference.into(),
        }
    }

    /// What the target's own partner configuration says (a fail when unmet).
    pub fn configuration(reference: impl Into<String>) -> Requirement {
        Requirement {
            source: SourceKind::Configuration,
            keyword: None,
            reference: reference.into(),
        }
    }

    /// A choice of the policy profile (non-strict under `lync`, fail under `strict`).
    pub fn policy(reference: impl Into<String>) -> Requirement {
        Requirement {
            source: SourceKind::Policy,
            keyword: None,
            reference: reference.into(),
        }
    }

    /// SPEC §4.6: the severity of this requirement when it is not met.
    pub fn severity(&self, policy: Policy) -> Severity {
        match self.source {
            SourceKind::Protocol => self.keyword.map_or(Severity::NonStrict, Keyword::severity),
            SourceKind::Configuration => Severity::Fail,
            SourceKind::Policy => match policy {
                Policy::Lync => Severity::NonStrict,
                Policy::Strict => Severity::Fail,
            },
        }
    }

    /// `protocol, RFC 6120 §5.4.3.3 MUST` — the label reports print.
    pub fn label(&self) -> String {
        match self.keyword {
            Some(k) => format!("{}, {} {}", self.source, self.reference, k),
            None => format!("{}, {}", self.source, self.reference),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// One unmet expectation of a case: what was wrong, the text it rests on and
/// what that does to the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deviation {
    #[serde(flatten)]
    pub requirement: Requirement,
    pub severity: Severity,
    pub text: String,
}

impl Deviation {
    pub fn new(requirement: Requirement, policy: Policy, text: impl Into<String>) -> Deviation {
        Deviation {
            severity: requirement.severity(policy),
            requirement,
            text: text.into(),
        }
    }

    /// The one-line message of the report: `MUST (protocol, RFC 6120 §5.4.1): text`.
    pub fn message(&self) -> String {
        let head = match (self.requirement.keyword, self.severity) {
            (Some(k), _) => k.as_str().to_string(),
            (None, _) if self.requirement.source == SourceKind::Protocol => "ADVISORY".into(),
            (None, Severity::Fail) => "FAIL".into(),
            (None, Severity::NonStrict) => "NON-STRICT".into(),
            (None, Severity::Info) => "INFO".into(),
        };
        format!(
            "{head} ({}, {}): {}",
            self.requirement.source, self.requirement.reference, self.text
        )
    }
}

/// The verdict's strength from its deviations: `Fail` if any fails,
/// `NonStrict` if any is non-strict, `None` when nothing counts against it.
pub fn worst(deviations: &[Deviation]) -> Option<Severity> {
    if deviations.iter().any(|d| d.severity == Severity::Fail) {
        Some(Severity::Fail)
    } else if deviations.iter().any(|d| d.severity == Severity::NonStrict) {
        Some(Severity::NonStrict)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_has_the_severity_of_spec_4_6() {
        for k in Keyword::ALL {
            let want = match k.as_str() {
                "MUST" | "MUST NOT" | "REQUIRED" | "SHALL" | "SHALL NOT" => Severity::Fail,
                "SHOULD" | "SHOULD NOT" | "RECOMMENDED" => Severity::NonStrict,
                "MAY" | "OPTIONAL" => Severity::Info,
                other => panic!("unlisted keyword {other}"),
            };
            assert_eq!(k.severity(), want, "{k}");
            for p in [Policy::Lync, Policy::Strict] {
                assert_eq!(Requirement::protocol(*k, "RFC 1").severity(p), want);
            }
        }
    }

    #[test]
    fn configuration_always_fails_and_policy_depends_on_the_profile() {
        for p in [Policy::Lync, Policy::Strict] {
            assert_eq!(
                Requirement::configuration("SPEC §4.1").severity(p),
                Severity::Fail
            );
        }
        let r = Requirement::policy("SPEC §4.4");
        assert_eq!(r.severity(Policy::Lync), Severity::NonStrict);
        assert_eq!(r.severity(Policy::Strict), Severity::Fail);
    }

    #[test]
    fn worst_orders_fail_over_non_strict_over_info() {
        let d = |k| Deviation::new(Requirement::protocol(k, "X"), Policy::Lync, "t");
        assert_eq!(worst(&[]), None);
        assert_eq!(worst(&[d(Keyword::May)]), None);
        assert_eq!(
            worst(&[d(Keyword::May), d(Keyword::Should)]),
            Some(Severity::NonStrict)
        );
        assert_eq!(
            worst(&[d(Keyword::Should), d(Keyword::MustNot)]),
            Some(Severity::Fail)
        );
    }

    #[test]
    fn json_names_source_keyword_ref_and_severity() {
        let d = Deviation::new(
            Requirement::protocol(Keyword::MustNot, "RFC 6120 §5.4.3.3"),
            Policy::Lync,
            "STARTTLS offered twice",
        );
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["source"], "protocol");
        assert_eq!(v["keyword"], "MUST NOT");
        assert_eq!(v["ref"], "RFC 6120 §5.4.3.3");
        assert_eq!(v["severity"], "fail");
        assert_eq!(
            d.message(),
            "MUST NOT (protocol, RFC 6120 §5.4.3.3): STARTTLS offered twice"
        );
        let back: Deviation = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
        let a = Deviation::new(Requirement::advisory("RFC 9525 §2"), Policy::Strict, "cn");
        assert_eq!(a.severity, Severity::NonStrict);
        assert_eq!(a.message(), "ADVISORY (protocol, RFC 9525 §2): cn");
        let c = Deviation::new(Requirement::policy("SPEC §4.4"), Policy::Lync, "x");
        assert_eq!(c.message(), "NON-STRICT (policy, SPEC §4.4): x");
        assert!(serde_json::to_value(&c).unwrap().get("keyword").is_none());
    }
}
