//! Why a managed server cannot be configured for a case: the reason a case
//! is `not-applicable` there (its text goes into the reports as is).

use crate::oracle::Policy;
use crate::partner::{Method, Methods, Negotiation, PartnerType, Setting};

use super::Group;

/// A case, configuration or setting the server's profile cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inexpressible {
    /// A capability of scope `none`: the profile's reason, else a default.
    #[error(
        "{}",
        reason.clone().unwrap_or_else(|| format!("the server cannot express {what}"))
    )]
    Capability {
        what: &'static str,
        reason: Option<String>,
    },
    #[error(
        "the server cannot express {setting} = {value} (it can express: {})",
        if known.is_empty() { "nothing".to_string() } else { known.join(", ") }
    )]
    Value {
        setting: &'static str,
        value: String,
        known: Vec<String>,
    },
    #[error("target configuration {} ({}): {problem}", config.code(), describe(*config))]
    Configuration {
        config: Negotiation,
        problem: Box<ConfigurationProblem>,
    },
    #[error("the managed runner cannot hand a server an invalid configuration yet")]
    InvalidConfiguration,
    #[error(
        "the outbound trigger is a ping from the peer's own domain, which a partner \
         allowlist refuses, so nothing can make the server address a stranger"
    )]
    OutboundStranger,
    #[error(
        "under policy {policy} the server refuses every stream whose certificate fails ({how}), \
         where s2spec expects {shared} to proceed: only SASL EXTERNAL rests on the initiating \
         certificate (SPEC §4.4)"
    )]
    CertificateBound {
        policy: Policy,
        how: String,
        /// The methods the pairing shares.
        shared: Methods,
    },
    #[error("the server has no partner types (SPEC §7)")]
    NoPartnerTypes,
    #[error("the scenario needs {need} (its `needs`): {why}")]
    Needs {
        need: &'static str,
        why: Box<Inexpressible>,
    },
    #[error("the scenario needs partner type `{0}` (SPEC §7); the server has no partner types")]
    PartnerType(PartnerType),
    #[error(
        "the scenario tests what partner type `{0}` allows without the local user's \
         approval (SPEC §7); the server has no partner types"
    )]
    PartnerTypeRules(PartnerType),
    #[error("the scenario needs {0} (SPEC §2), which the managed runner does not render")]
    Unrendered(&'static str),
    #[error("the scenario relies on refusing `{domain}`, a domain that is no partner: {why}")]
    NonPartner {
        domain: String,
        why: Box<Inexpressible>,
    },
    /// Several configurations, none expressible: the reason of each.
    #[error(
        "none of the scenario's configurations can be expressed: {}",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NoConfiguration(Vec<Inexpressible>),
}

/// Why one target configuration cannot be expressed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigurationProblem {
    #[error("{0} is per-domain in the profile, which the managed runner does not render yet")]
    PerDomain(&'static str),
    #[error("under policy {policy} the server cannot have tls = {tls} ({how})")]
    PolicyTls {
        policy: Policy,
        tls: Setting,
        how: String,
    },
    #[error("under policy {policy} the server cannot admit {} ({how})", method.title())]
    PolicyExcludes {
        policy: Policy,
        method: Method,
        how: String,
    },
    #[error(transparent)]
    Setting(Inexpressible),
    #[error(
        "its global switches ({natural}) admit {} where the configuration admits {}",
        list(got),
        list(want)
    )]
    Switches {
        natural: Group,
        got: Vec<Method>,
        want: Vec<Method>,
    },
}

pub(super) fn describe(t: Negotiation) -> String {
    format!("tls={} sasl={} dialback={}", t.tls, t.sasl, t.dialback)
}

fn list(m: &[Method]) -> String {
    if m.is_empty() {
        return "no method".into();
    }
    m.iter().map(|m| m.title()).collect::<Vec<_>>().join(", ")
}

/// `unshare --mount` does not work here.
#[derive(Debug, thiserror::Error)]
pub enum UnshareError {
    #[error("cannot run unshare: {0}")]
    Spawn(#[source] std::io::Error),
    /// unshare's own complaint (its standard error, trimmed).
    #[error("{0}")]
    Refused(String),
}
