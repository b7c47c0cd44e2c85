//! Scripted scenarios: one TOML file per scenario under `scenarios/<spec>/`,
//! each a short conversation between a simulated peer and the target with
//! the requirement it checks (SPEC §4.5, §9).
//!
//! This module is pure: the model, the loader and the two small languages a
//! scenario is written in — placeholders (`template`) and structural element
//! patterns (`pattern`). The interpreter lives in `run::script`.
//!
//! A scenario file:
//!
//! ```toml
//! id = "rfc6120/4.9.3.12/stanza-before-auth"
//! title = "A stanza before authentication is refused with <not-authorized/>"
//! refs = ["RFC 6120 §4.9.3.12", "SPEC §4.1"]
//! level = "MUST"
//! tags = ["stream-error"]
//!
//! [partner]          # what the target is configured with for the peer's domain
//! type = "federated"
//! tls = "optional"
//! sasl = "optional"
//! dialback = true
//!
//! [peer]             # the simulated peer (defaults: OO1, valid, srv, honest)
//! tls = "not-supported"
//!
//! [[step]]
//! connect = true
//!
//! [[step]]
//! send = "<message from='tester@{peer}' to='alice@{target}' id='m1'><body>hi</body></message>"
//!
//! [[step]]
//! expect-stream-error = "not-authorized"
//! ```

mod error;
mod load;
pub mod pattern;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::oracle::DnsVariant;
use crate::partner::{Negotiation, PartnerType};
use crate::peer::{Authzid, VerifyMode};
use crate::pki::CertVariant;
use crate::requirement::Requirement;

pub use error::{LoadError, Problem, StepProblem, TemplateError};
pub use load::{load_scenarios, parse_script, script_domain};
pub use template::{Placeholder, Template};

/// How strongly the cited text requires the behaviour (RFC 2119).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Any unmet expectation fails the scenario.
    #[serde(rename = "MUST")]
    Must,
    /// Unmet expectations make it `non-strict`.
    #[serde(rename = "SHOULD")]
    Should,
    /// An optional capability: `not-applicable` when absent, never a failure.
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

/// One loaded scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    /// `<spec>/<section>/<slug>` (SPEC §4.5).
    pub id: String,
    pub title: String,
    pub refs: Vec<String>,
    pub level: Level,
    /// What an unmet step rests on unless the step names its own: the
    /// scenario's `source` (default `protocol`), `level` and first ref.
    pub requirement: Requirement,
    pub tags: Vec<String>,
    /// The file it came from, as given to the loader.
    pub file: String,
    /// The target's partner configuration for the peer's domain; `None`
    /// means the domain is configured nowhere (a stranger, SPEC §2).
    pub partner: Option<PartnerSpec>,
    pub peer: PeerSpec,
    /// What the scenario needs of a target beyond its partner
    /// configuration (`needs = [...]`); a managed target without one of
    /// them gives it `not-applicable` with the profile's reason.
    pub needs: Vec<Need>,
    #[serde(skip)]
    pub steps: Vec<Step>,
}

/// A capability of the target a scenario can state that it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Need {
    /// Local users to send and receive stanzas (a profile's `[accounts]`).
    LocalUsers,
    /// Refusing domains that match no partner (SPEC §2).
    PartnerAllowlist,
    /// A partner's proxy FQDN (SPEC §2, §6).
    ProxyFqdn,
    /// Partner types and their rules (SPEC §7).
    PartnerTypes,
    /// Bidirectional streams offered (XEP-0288): a managed target runs the
    /// scenario in a group of its own with them on.
    Bidi,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::LocalUsers => "local-users",
            Need::PartnerAllowlist => "partner-allowlist",
            Need::ProxyFqdn => "proxy-fqdn",
            Need::PartnerTypes => "partner-types",
            Need::Bidi => "bidi",
        }
    }
}

/// A partner entry of the generated partner set. Domains may use `{peer}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartnerSpec {
    pub partner_type: PartnerType,
    /// The first configuration under which the scenario holds: the
    /// reference target's (its transcripts are recorded with it).
    pub negotiation: Negotiation,
    /// Further configurations under which it holds equally, in the order
    /// written (each valid per SPEC §3); a managed target takes the first
    /// of all that it can express.
    pub alternatives: Vec<Negotiation>,
    pub additional_domains: Vec<Template>,
    pub connection_limit: Option<u32>,
    pub keep_alive: bool,
}

/// The simulated peer: its own settings and how the harness places it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerSpec {
    pub negotiation: Negotiation,
    pub cert: CertVariant,
    pub dns: DnsVariant,
    pub verify: VerifyMode,
    pub authzid: Authzid,
    /// Further domains the peer serves (each gets a server and DNS records),
    /// e.g. `sub.{peer}`.
    pub domains: Vec<Template>,
}

/// One step, with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    pub action: Action,
    /// Overrides the default wait of the step.
    pub timeout: Option<Duration>,
    /// How the step reads in messages, e.g. `expect-stream-error = "not-authorized"`.
    pub source: String,
    /// What the step rests on when it is not met (the scenario's default
    /// unless the step names its own `keyword`/`source`/`ref`).
    pub requirement: Requirement,
}

impl Step {
    /// Whether the step acts on the current connection (and so cannot run
    /// once that connection is gone). `connect` and `authenticate` open their
    /// own; delivery and stanza checks watch the peer's servers.
    pub fn needs_connection(&self) -> bool {
        !self.watches()
            && !matches!(
                self.action,
                Action::Connect { .. } | Action::Authenticate { .. } | Action::Wait(_)
            )
    }

    /// Whether the step watches the peer's servers for what earlier steps
    /// sent: once one of those was skipped, there is nothing to watch for.
    pub fn watches(&self) -> bool {
        matches!(
            self.action,
            Action::ExpectDelivery { .. } | Action::ExpectStanza { .. }
        )
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Opens a TCP connection as `from` (default `{peer}`); sends a stream
    /// header to `to` (default `{target}`) unless `header = false`, and
    /// reads the target's header and features. `direct_tls` does the TLS
    /// handshake first (XEP-0368).
    Connect {
        from: Template,
        to: Template,
        header: bool,
        direct_tls: bool,
    },
    /// A new stream header on the current connection (after SASL success).
    Open,
    /// Sends a well-formed element, written as XML.
    Send(Template),
    /// Sends bytes as written; `pad_to` fills `{padding}` so that the whole
    /// payload is that many bytes.
    SendRaw {
        text: Template,
        pad_to: Option<usize>,
    },
    /// `<starttls/>` (with `pipeline` appended in the same write), expects
    /// `<proceed/>`, does the handshake and restarts the stream.
    StartTls { pipeline: Option<Template> },
    /// Authenticates the normal way with the peer's profile as `from` on a
    /// new connection; `expect_success = false` requires that it fails.
    Authenticate {
        from: Template,
        expect_success: bool,
    },
    /// The next element must match the pattern.
    Expect {
        patterns: Vec<Template>,
        exact: bool,
    },
    /// The next element must be a stream error with one of these conditions.
    ExpectStreamError(Vec<String>),
    /// The target must close the stream (end tag or connection closed).
    ExpectClose,
    /// The target's next stream header carries this `version` (RFC 6120
    /// §4.7.5: the lower of the initiating entity's and its own).
    ExpectVersion(String),
    /// Nothing but whitespace may arrive for this long.
    ExpectNothing(Duration),
    /// A stanza with this id must (not) come back to the peer's server at
    /// `at`: the local user echoes messages, so an echo proves delivery.
    ExpectDelivery {
        id: Template,
        at: Template,
        delivered: bool,
    },
    /// The target sends a stanza matching the pattern to the peer's server at `at`.
    ExpectStanza {
        pattern: Template,
        exact: bool,
        absent: Vec<String>,
        at: Template,
    },
    /// The current stream's features do (not) include this one.
    ExpectFeature { feature: Feature, present: bool },
    /// Sends `</stream:stream>`.
    Close,
    /// Pauses.
    Wait(Duration),
}

/// A stream feature a step can look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feature {
    StartTls,
    StartTlsRequired,
    /// SASL EXTERNAL among the mechanisms.
    External,
    /// Any `<mechanisms/>`.
    Sasl,
    Dialback,
    /// `{namespace}name`, e.g. `{urn:xmpp:features:bidi}bidi`.
    Other {
        ns: String,
        name: String,
    },
}

/// A scenario as a case: shared, compared by content.
pub type ScriptRef = Arc<Script>;

impl PartnerSpec {
    /// Every configuration the scenario holds under, the first one first.
    pub fn configurations(&self) -> impl Iterator<Item = Negotiation> + '_ {
        std::iter::once(self.negotiation).chain(self.alternatives.iter().copied())
    }
}

impl Script {
    /// The scenario's peer domain (see [`script_domain`]).
    pub fn domain(&self) -> String {
        script_domain(&self.id)
    }

    /// The `[[partner]]` entry the target gets for this scenario (none for a
    /// stranger); `proxy_fqdn` is set under the `proxy-fqdn` DNS variant.
    pub fn partner_entry(&self, target_domain: &str, proxy_fqdn: Option<&str>) -> Option<String> {
        let p = self.partner.as_ref()?;
        let domain = self.domain();
        let fill = |t: &Template| {
            t.render(|h| {
                Ok::<_, ()>(match h {
                    Placeholder::Peer => Some(domain.clone()),
                    Placeholder::Target => Some(target_domain.to_owned()),
                    _ => None,
                })
            })
            .unwrap_or_else(|_| t.source.clone())
        };
        let n = p.negotiation;
        let mut out = format!(
            "\n[[partner]]\ndomain = \"{domain}\"\ndescription = \"scenario {}\"\ntype = \"{}\"\n\
             tls = \"{}\"\nsasl = \"{}\"\ndialback = {}\nkeep-alive = {}\n",
            self.id, p.partner_type, n.tls, n.sasl, n.dialback, p.keep_alive
        );
        if !p.additional_domains.is_empty() {
            let list: Vec<String> = p
                .additional_domains
                .iter()
                .map(|d| format!("\"{}\"", fill(d)))
                .collect();
            out.push_str(&format!("additional-domains = [{}]\n", list.join(", ")));
        }
        if let Some(limit) = p.connection_limit {
            out.push_str(&format!("connection-limit = {limit}\n"));
        }
        if let Some(fqdn) = proxy_fqdn {
            out.push_str(&format!("proxy-fqdn = \"{fqdn}\"\n"));
        }
        Some(out)
    }
}
