//! Verdicts and reports: the plain data a run produces, and its renderings
//! (`report.json`, `junit.xml`, a summary table).

use serde::{Deserialize, Serialize};

use crate::requirement::{Deviation, Requirement, Severity, SourceKind};
use crate::stream::Entry;

mod baseline;
mod human;
pub mod initiating;
mod json;
mod junit;
mod outcome;
mod snapshot;
mod table;

pub use baseline::{BaselineOutcome, FixedEntry, GateCase, KnownCase};
pub use human::{case_anchor, html_string, markdown_string, write_html, write_markdown};
pub use json::{ReadError, json_bytes, read_json, write_json};
pub use junit::{
    TRANSCRIPT_TAIL, group_of, junit_report, junit_string, transcript_line, write_junit,
};
pub use outcome::{CaseOutcome, UnknownOutcome};
pub use snapshot::{snapshot_name, snapshot_text};
pub use table::{MAX_FAILING_SHOWN, summary_table, summary_table_with};

/// Version of the `report.json` schema (documented in `docs/report-schema.md`).
pub const SCHEMA: &str = "s2spec-report/2";

/// The judgement of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    /// Only SHOULD-level deviations.
    NonStrict,
    /// The target cannot express the configuration; the reason is given.
    NotApplicable,
    Fail,
    /// The harness or the environment broke; never counted as a pass.
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Pass,
        Verdict::NonStrict,
        Verdict::NotApplicable,
        Verdict::Fail,
        Verdict::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::NonStrict => "non-strict",
            Verdict::NotApplicable => "not-applicable",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the oracle said must happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// In `report.json` the phrase: `SASL over TLS`, `TLS Dialback`, `TCP
    /// Dialback` or `refused`; `configuration refused` for a configuration
    /// case, `every step met` for a scenario.
    pub outcome: CaseOutcome,
    pub tls: bool,
    pub rationale: String,
    pub refs: Vec<String>,
    /// The rule an unexpected outcome deviates from (SPEC §4.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Requirement>,
    /// Other outcomes and how each is judged, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
}

/// What the harness saw, classified from the transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub outcome: CaseOutcome,
    pub tls: bool,
    /// Short facts that decided the classification, e.g. `echo received`.
    pub facts: Vec<String>,
    /// How the target behaved as initiating server (its streams to the
    /// peer's server and the names it resolved), where it opened any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiating: Option<Initiating>,
}

/// The target as initiating server in one case, as the peer's server and
/// the mock DNS saw it: facts, judged only where a text speaks (the judge).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Initiating {
    /// The DNS queries for the peer's domain, in arrival order.
    pub dns_queries: Vec<DnsQuery>,
    /// Each TCP connection the target opened to the peer's server, in order.
    pub connections: Vec<Connection>,
}

/// One DNS query: `_xmpp-server._tcp.DOMAIN` `SRV`, `DOMAIN` `A`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsQuery {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
}

/// One connection of the target to the peer's server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// Stream headers the target sent on it (one per stream restart).
    pub headers: Vec<HeaderFacts>,
    /// The TLS handshake, if one completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// A direct-TLS (XEP-0368) ClientHello the target sent to a port that
    /// speaks STARTTLS (`xmpps-to-starttls-port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_tls: Option<DirectTlsFacts>,
    /// What the connection was for: `db:verify` (dialback verification) or
    /// `stanzas` (an authenticated outbound stream); empty when neither.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_for: Vec<String>,
}

/// What a direct-TLS ClientHello of the target said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectTlsFacts {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
}

/// The attributes of one stream header the target sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderFacts {
    pub from: Option<String>,
    pub to: Option<String>,
    pub version: Option<String>,
    /// `xmlns:db` declared (XEP-0220 §2.4.1).
    pub dialback_declared: bool,
    /// Sent on the encrypted stream.
    pub tls: bool,
}

/// A TLS handshake the target completed as client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// The server name indication it sent; `None`: none.
    pub sni: Option<String>,
    pub version: Option<String>,
    pub cipher_suite: Option<String>,
    /// Whether it presented a client certificate.
    pub client_cert: bool,
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    pub id: String,
    pub family: String,
    pub description: String,
    pub verdict: Verdict,
    pub expected: Option<Expected>,
    pub observed: Option<Observed>,
    /// Why the verdict is not a plain pass: each failed check with the
    /// requirement it rests on, or the error / not-applicable reason.
    pub messages: Vec<String>,
    /// Each unmet expectation with its source (SPEC §4.6); `messages` holds
    /// their one-line renderings plus error / not-applicable reasons.
    #[serde(default)]
    pub deviations: Vec<Deviation>,
    pub duration_ms: u64,
    /// The steps that concluded because a bounded wait ran out rather than
    /// on an event (issue 13); absent when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waited: Vec<Waited>,
    pub transcript: Vec<Entry>,
}

/// One step of a case that concluded by waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waited {
    /// The scenario step (1-based); 0 for the single exchange of a matrix
    /// case (its test stanza or the ping's answer).
    pub step: usize,
    /// How long it waited.
    pub ms: u64,
    /// Why nothing settled it sooner.
    pub why: String,
}

/// Which target was tested, how.
#[derive(Default, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub s2spec_version: String,
    /// `reference`, `external`, ...
    pub target: String,
    /// Fault switches of the reference target, if any.
    pub faults: Vec<String>,
    /// The oracle's policy profile (SPEC §4.4).
    pub policy: String,
    /// RFC 3339 timestamps.
    pub started: String,
    pub finished: String,
    pub duration_ms: u64,
    /// Which transcripts the file keeps; absent in older reports, which keep all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcripts: Option<Transcripts>,
    /// How the cases were chosen, so shards of one run can be merged and
    /// checked for overlap; absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    /// The run was stopped (SIGINT/SIGTERM) before every selected case
    /// finished: `cases` holds only those that did.
    #[serde(default)]
    pub interrupted: bool,
}

kebab_enum! {
    /// Which cases keep their transcript in `report.json` (`--transcripts`).
    Transcripts {
        /// Every case.
        All = "all",
        /// Only cases that did not pass (non-strict, fail, error); a passing
        /// transcript is what its snapshot already holds.
        Failing = "failing",
        /// Only cases that fail or error: for runs whose many non-strict
        /// cases repeat one finding, to keep the file small.
        Fail = "fail",
        /// None: the smallest file.
        None = "none",
    }
}

impl Transcripts {
    /// Whether a case with this verdict keeps its transcript.
    pub fn keeps(self, verdict: Verdict) -> bool {
        match self {
            Transcripts::All => true,
            Transcripts::Failing => {
                matches!(verdict, Verdict::NonStrict | Verdict::Fail | Verdict::Error)
            }
            Transcripts::Fail => matches!(verdict, Verdict::Fail | Verdict::Error),
            Transcripts::None => false,
        }
    }
}

/// The selection of a run (`--filter`, `--skip`, `--partition`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(default)]
    pub filter: Vec<String>,
    #[serde(default)]
    pub skip: Vec<String>,
    /// `K/N` of a sharded run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
}

/// Part `k` of `n` (1-based) of a sharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Partition {
    pub k: usize,
    pub n: usize,
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// What an interrupted report says about itself, in every rendering.
pub const INTERRUPTED_NOTE: &str = "INTERRUPTED: the run was stopped before every selected case finished; \
     this report holds only the cases that did";

/// Counts per verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub pass: usize,
    pub non_strict: usize,
    pub not_applicable: usize,
    pub fail: usize,
    pub error: usize,
    /// Failing cases per source kind of their failing deviations (SPEC
    /// §4.6); a case failing two kinds of rule counts under both.
    #[serde(default)]
    pub fail_by_source: SourceCounts,
    /// Non-strict cases per source kind of their non-strict deviations.
    #[serde(default)]
    pub non_strict_by_source: SourceCounts,
}

/// Cases per source kind (SPEC §4.6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCounts {
    pub protocol: usize,
    pub configuration: usize,
    pub policy: usize,
}

impl SourceCounts {
    fn add(&mut self, case: &CaseResult, severity: Severity) {
        for kind in SourceKind::ALL {
            if case
                .deviations
                .iter()
                .any(|d| d.severity == severity && d.requirement.source == *kind)
            {
                *match kind {
                    SourceKind::Protocol => &mut self.protocol,
                    SourceKind::Configuration => &mut self.configuration,
                    SourceKind::Policy => &mut self.policy,
                } += 1;
            }
        }
    }

    /// `protocol 3 · configuration 1 · policy 0`.
    pub fn line(&self) -> String {
        format!(
            "protocol {} · configuration {} · policy {}",
            self.protocol, self.configuration, self.policy
        )
    }
}

impl Summary {
    pub fn of(cases: &[CaseResult]) -> Summary {
        let mut s = Summary {
            total: cases.len(),
            ..Summary::default()
        };
        for c in cases {
            *match c.verdict {
                Verdict::Pass => &mut s.pass,
                Verdict::NonStrict => &mut s.non_strict,
                Verdict::NotApplicable => &mut s.not_applicable,
                Verdict::Fail => &mut s.fail,
                Verdict::Error => &mut s.error,
            } += 1;
            match c.verdict {
                Verdict::Fail => s.fail_by_source.add(c, Severity::Fail),
                Verdict::NonStrict => s.non_strict_by_source.add(c, Severity::NonStrict),
                _ => {}
            }
        }
        s
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub run: RunInfo,
    pub summary: Summary,
    pub cases: Vec<CaseResult>,
    /// The run measured against a baseline of known deviations
    /// (`--baseline`); absent otherwise and in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineOutcome>,
}

impl Report {
    pub fn new(run: RunInfo, mut cases: Vec<CaseResult>) -> Report {
        cases.sort_by(|a, b| a.id.cmp(&b.id));
        Report {
            schema: SCHEMA.to_string(),
            summary: Summary::of(&cases),
            run,
            cases,
            baseline: None,
        }
    }

    /// Drops the transcripts `mode` does not keep and records the mode, so
    /// the renderings can say a transcript was left out rather than absent.
    pub fn keep_transcripts(&mut self, mode: Transcripts) {
        for case in &mut self.cases {
            if !mode.keeps(case.verdict) {
                case.transcript = Vec::new();
            }
        }
        self.run.transcripts = Some(mode);
    }

    /// The line a rendering shows instead of an empty transcript.
    pub fn no_transcript_note(&self, case: &CaseResult) -> String {
        match self.run.transcripts {
            Some(mode) if !mode.keeps(case.verdict) => {
                format!("Transcript omitted (--transcripts {mode}).")
            }
            _ => "No transcript.".to_string(),
        }
    }
}
