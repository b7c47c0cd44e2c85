//! Target profiles (`fixtures/targets/<name>.toml`): how to run a real server
//! and its capability map — which partner settings it can express, globally
//! or per remote domain. [`decide`] is the pure rule that turns a case into
//! "run it in this configuration group" or "not applicable, because ...".

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::oracle::{
    Direction, DnsVariant, Pairing, Policy, certificate_defect, optional_identity,
};
use crate::partner::{Method, Negotiation, PartnerType, Setting, methods};
use crate::scenario::script::{Action, Script, Step};
use crate::scenario::{Case, CaseKind};

/// A managed target's profile, as read from its TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// The executable that must be on PATH.
    pub program: String,
    /// How to install the server (shown when `program` is missing).
    pub install: String,
    /// A file holding the exact server version.
    pub version_file: Option<PathBuf>,
    /// Or a command printing it (used when there is no `version_file`).
    pub version_command: Option<Vec<String>>,
    /// The configuration template, relative to the profile file.
    pub template: PathBuf,
    /// The rendered configuration's file name in the run directory.
    pub config_name: String,
    /// The server's log file name in the run directory.
    pub log_name: Option<String>,
    /// The command line; `{config}` and `{run_dir}` are substituted.
    pub command: Vec<String>,
    /// The server's environment; `{config}` and `{run_dir}` are substituted.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Further files written into the run directory: name → template (the
    /// same `{{placeholders}}` as the configuration template).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// How the server reaches the mock DNS.
    pub dns: DnsHookup,
    /// Modules every instance loads.
    #[serde(default)]
    pub modules: Vec<String>,
    /// How one module is written in the `{{modules}}` list (`{name}`).
    #[serde(default = "default_module_format")]
    pub module_format: String,
    /// How one partner domain is written in the `{{partners}}` list
    /// (`{domain}`), for a partner allowlist.
    #[serde(default = "default_partner_format")]
    pub partner_format: String,
    pub readiness: Readiness,
    pub stop: Stop,
    /// Fixed template values.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    pub capabilities: Capabilities,
    /// Where the profile was read from (templates are relative to it).
    #[serde(skip)]
    pub dir: PathBuf,
}

fn default_module_format() -> String {
    "\t\"{name}\";".into()
}

fn default_partner_format() -> String {
    "\"{domain}\"".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsHookup {
    /// A configuration option carries the mock DNS address.
    Forward,
    /// The server resolves through the C library, whose resolv.conf takes no
    /// port: the mock DNS listens on port 53 of a loopback address of its
    /// own, and the command bind-mounts a rendered resolv.conf in a private
    /// mount namespace (which dies with the server). Needs root.
    ResolvConf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Readiness {
    pub kind: ReadinessKind,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadinessKind {
    /// The s2s port accepts a TCP connection.
    TcpConnect,
    /// The server answers a server-to-server stream header with its own.
    StreamHeader,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Stop {
    /// The signal sent first (then SIGKILL after `grace_ms`).
    pub signal: String,
    pub grace_ms: u64,
}

/// The capability map.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Capabilities {
    /// Values `required`, `optional`, `not-supported`.
    pub tls: Capability,
    /// Values `on`, `off`: SASL EXTERNAL over TLS admitted or not.
    pub sasl: Capability,
    /// Values `on`, `off`: dialback admitted or not.
    pub dialback: Capability,
    /// Values named after the oracle's policy profiles (`lync`, `strict`).
    pub policy: Capability,
    /// Refusing domains that match no partner (SPEC §2). Value `on`: the
    /// fragment every instance gets, with `{{partners}}` in its settings.
    pub partner_allowlist: Capability,
    /// A partner's proxy FQDN (SPEC §2, §6).
    pub proxy_fqdn: Capability,
    /// Refusing an invalid partner configuration (SPEC §3).
    pub config_validation: Capability,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Global,
    PerDomain,
    None,
}

/// How one setting is expressed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Capability {
    pub scope: Scope,
    /// How the server expresses it (documentation, shown in reports).
    #[serde(default)]
    pub how: Option<String>,
    /// Why it cannot be expressed (scope `none`).
    #[serde(default)]
    pub reason: Option<String>,
    /// The expressible values.
    #[serde(flatten)]
    pub values: BTreeMap<String, Fragment>,
}

/// What one value of a setting puts into the configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Fragment {
    #[serde(default)]
    pub settings: Vec<String>,
    #[serde(default)]
    pub modules: Vec<String>,
    /// Methods a server with this value can never admit (a policy switch that
    /// refuses every clear-text stream excludes `tcp-dialback`).
    #[serde(default)]
    pub excludes: Vec<Method>,
    /// The TLS settings this value can be combined with (empty: any). A
    /// policy switch that requires encryption everywhere leaves `required`.
    #[serde(default)]
    pub tls_values: Vec<Setting>,
    /// With this value the server refuses every stream whose peer
    /// certificate fails, whatever the method (Prosody's `s2s_secure_auth`),
    /// where s2spec's strict policy rules out only SASL EXTERNAL inbound.
    #[serde(default)]
    pub certificate_bound: bool,
}

impl Capability {
    /// Why the server cannot express `what` at all (scope `none`).
    fn why_not(&self, what: &str) -> String {
        self.reason
            .clone()
            .unwrap_or_else(|| format!("the server cannot express {what}"))
    }

    /// The fragment of `value`, or why it cannot be expressed.
    fn fragment(&self, setting: &str, value: &str) -> Result<&Fragment, String> {
        if self.scope == Scope::None {
            return Err(self.why_not(setting));
        }
        self.values.get(value).ok_or_else(|| {
            let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
            format!(
                "the server cannot express {setting} = {value} (it can express: {})",
                if known.is_empty() {
                    "nothing".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
    }
}

impl Profile {
    /// Reads `fixtures/targets/<name>.toml`-style files.
    pub fn load(path: &Path) -> Result<Profile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read target profile {}: {e}", path.display()))?;
        let mut profile: Profile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        profile.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if profile.command.is_empty() {
            return Err(format!("{}: `command` is empty", path.display()));
        }
        Ok(profile)
    }

    /// The profile of a named server under `dir` (`fixtures/targets`).
    pub fn named(dir: &Path, name: &str) -> Result<Profile, String> {
        Profile::load(&dir.join(format!("{name}.toml")))
    }

    pub fn template_path(&self) -> PathBuf {
        self.dir.join(&self.template)
    }

    /// Where `program` is on PATH, if anywhere.
    pub fn find_program(&self) -> Option<PathBuf> {
        find_on_path(&self.program)
    }

    /// The installed server's exact version, when the profile says where it is.
    pub fn version(&self) -> Option<String> {
        let text = match (&self.version_file, &self.version_command) {
            (Some(file), _) => std::fs::read_to_string(file).ok()?,
            (None, Some(cmd)) => {
                let out = std::process::Command::new(cmd.first()?)
                    .args(&cmd[1..])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .ok()?;
                if !out.status.success() {
                    return None;
                }
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
            (None, None) => return None,
        };
        let v = text.trim();
        (!v.is_empty()).then(|| format!("{} {v}", self.name))
    }

    /// Why this server cannot be run here (not installed, or it needs
    /// privileges this process lacks); `None` when it can.
    pub fn unavailable(&self) -> Option<String> {
        if self.find_program().is_none() {
            return Some(self.not_installed());
        }
        if self.dns == DnsHookup::ResolvConf {
            let why = "s2spec points its resolver at the mock DNS by bind-mounting a \
                       resolv.conf in a private mount namespace and serving DNS on port 53 \
                       of a loopback address";
            if !is_root() {
                return Some(format!(
                    "{} needs root here: {why} (run as root, e.g. in CI or a container)",
                    self.description
                ));
            }
            if let Err(e) = can_unshare_mounts() {
                return Some(format!(
                    "{} cannot run here: {why}, and this machine refuses a mount \
                     namespace ({e}); a container needs CAP_SYS_ADMIN for it",
                    self.description
                ));
            }
        }
        None
    }

    /// The message shown when the server is not installed.
    pub fn not_installed(&self) -> String {
        format!(
            "{} is not installed (`{}` is not on PATH). Install it with:\n    {}",
            self.description, self.program, self.install
        )
    }
}

/// Whether this process runs as root (effective UID 0, from /proc).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Whether `unshare --mount` works here (it needs CAP_SYS_ADMIN).
fn can_unshare_mounts() -> Result<(), String> {
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Looks `program` up on PATH (an explicit path is taken as is).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// One server configuration that a group of cases shares: the values of the
/// global settings. One instance runs per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group {
    pub tls: Setting,
    pub sasl: bool,
    pub dialback: bool,
    pub policy: Policy,
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tls={} sasl={} dialback={} policy={}",
            self.tls,
            on_off(self.sasl),
            on_off(self.dialback),
            self.policy
        )
    }
}

impl Group {
    /// The methods a server with these global switches admits: SASL EXTERNAL
    /// over TLS when TLS is possible and SASL is on; dialback over TLS when TLS
    /// is possible and dialback is on; dialback over TCP when dialback is on
    /// and TLS is not required.
    pub fn methods(&self) -> Vec<Method> {
        let mut set = Vec::new();
        if self.tls.enabled() && self.sasl {
            set.push(Method::SaslOverTls);
        }
        if self.tls.enabled() && self.dialback {
            set.push(Method::TlsDialback);
        }
        if self.dialback && self.tls != Setting::Required {
            set.push(Method::TcpDialback);
        }
        set
    }

    /// The configuration fragments of this group, in setting order.
    pub fn fragments<'a>(&self, caps: &'a Capabilities) -> Result<Vec<&'a Fragment>, String> {
        Ok(vec![
            caps.tls.fragment("tls", self.tls.as_str())?,
            caps.sasl.fragment("sasl", on_off(self.sasl))?,
            caps.dialback.fragment("dialback", on_off(self.dialback))?,
            caps.policy.fragment("policy", &self.policy.to_string())?,
        ])
    }
}

/// What to do with one case against a managed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it on the instance of this group.
    Run(Group),
    /// The server cannot be configured for it.
    NotApplicable(String),
}

/// The group a target configuration needs, or why the server cannot express
/// it. Pure: the capability map and the configuration decide.
pub fn express(caps: &Capabilities, t: Negotiation, policy: Policy) -> Result<Group, String> {
    let want = methods(t);
    let natural = Group {
        tls: t.tls,
        sasl: want.contains(Method::SaslOverTls),
        dialback: want.contains(Method::TlsDialback) || want.contains(Method::TcpDialback),
        policy,
    };
    let reason = |e: String| format!("target configuration {} ({}): {e}", t.code(), describe(t));
    for (cap, name) in [
        (&caps.tls, "tls"),
        (&caps.sasl, "sasl"),
        (&caps.dialback, "dialback"),
        (&caps.policy, "policy"),
    ] {
        if cap.scope == Scope::PerDomain {
            return Err(reason(format!(
                "{name} is per-domain in the profile, which the managed runner does not render yet"
            )));
        }
    }
    // A switch that changes nothing (SASL without TLS, for instance) may take
    // whichever value the server can express: what must match is the set of
    // methods, not the spelling.
    let alternatives = [(false, false), (true, false), (false, true), (true, true)].map(
        |(flip_sasl, flip_dialback)| Group {
            sasl: natural.sasl ^ flip_sasl,
            dialback: natural.dialback ^ flip_dialback,
            ..natural
        },
    );
    if let Some(g) = alternatives
        .into_iter()
        .find(|g| g.methods() == want.to_vec() && g.fragments(caps).is_ok())
    {
        let policy_value = caps.policy.fragment("policy", &policy.to_string())?;
        if !policy_value.tls_values.is_empty() && !policy_value.tls_values.contains(&g.tls) {
            return Err(reason(format!(
                "under policy {policy} the server cannot have tls = {} ({})",
                g.tls,
                caps.policy
                    .how
                    .as_deref()
                    .unwrap_or("the profile's policy switch")
            )));
        }
        if let Some(m) = want.iter().find(|m| policy_value.excludes.contains(m)) {
            return Err(reason(format!(
                "under policy {policy} the server cannot admit {} ({})",
                m.title(),
                caps.policy
                    .how
                    .as_deref()
                    .unwrap_or("the profile's policy switch")
            )));
        }
        return Ok(g);
    }
    // Nothing fits: explain with the natural spelling.
    natural.fragments(caps).map_err(reason)?;
    let got = natural.methods();
    Err(reason(format!(
        "its global switches ({natural}) admit {} where the configuration admits {}",
        list(&got),
        list(&want.to_vec())
    )))
}

fn describe(t: Negotiation) -> String {
    format!("tls={} sasl={} dialback={}", t.tls, t.sasl, t.dialback)
}

fn list(m: &[Method]) -> String {
    if m.is_empty() {
        return "no method".into();
    }
    m.iter().map(|m| m.title()).collect::<Vec<_>>().join(", ")
}

/// The decision for one case: its target configuration must be expressible,
/// and so must everything else the case relies on.
pub fn decide(caps: &Capabilities, case: &Case, policy: Policy) -> Decision {
    let na = |c: &Capability, what: &str| Decision::NotApplicable(c.why_not(what));
    match &case.kind {
        CaseKind::Config(_) => {
            if caps.config_validation.scope == Scope::None {
                return na(&caps.config_validation, "a partner configuration");
            }
            Decision::NotApplicable(
                "the managed runner cannot hand a server an invalid configuration yet".into(),
            )
        }
        CaseKind::Stranger { direction, peer } => {
            if *direction == Direction::Outbound && caps.partner_allowlist.scope != Scope::None {
                // The ping that would make the server address the stranger
                // comes from the stranger itself, which the allowlist refuses:
                // a pass would prove nothing about the outbound side.
                return Decision::NotApplicable(
                    "the outbound trigger is a ping from the peer's own domain, which a partner \
                     allowlist refuses, so nothing can make the server address a stranger"
                        .into(),
                );
            }
            stranger(caps, *peer, policy)
        }
        CaseKind::Script(script) => decide_script(caps, script, policy),
        CaseKind::Pairing(p) => {
            if p.dns == DnsVariant::ProxyFqdn && caps.proxy_fqdn.scope == Scope::None {
                return na(&caps.proxy_fqdn, "a proxy FQDN");
            }
            if let Some(reason) = certificate_bound_mismatch(caps, p, policy) {
                return Decision::NotApplicable(reason);
            }
            run_as(caps, p.target, policy)
        }
    }
}

/// A server whose policy value refuses every failing certificate cannot
/// express what s2spec's policy expects where only dialback is shared and the
/// initiating certificate fails: s2spec expects dialback to proceed there.
fn certificate_bound_mismatch(caps: &Capabilities, p: &Pairing, policy: Policy) -> Option<String> {
    let value = caps.policy.values.get(policy.as_str())?;
    // An identity type the server need not support counts as failing for it.
    let fails = certificate_defect(p.cert).is_some() || optional_identity(p.cert).is_some();
    if !value.certificate_bound || p.direction != Direction::Inbound || !fails {
        return None;
    }
    let shared = methods(p.target).intersection(methods(p.peer));
    if shared.contains(Method::SaslOverTls) || shared.is_empty() {
        return None;
    }
    Some(format!(
        "under policy {policy} the server refuses every stream whose certificate fails ({}), \
         where s2spec expects {} to proceed: only SASL EXTERNAL rests on the initiating \
         certificate (SPEC §4.4)",
        caps.policy
            .how
            .as_deref()
            .unwrap_or("the profile's policy switch"),
        shared
    ))
}

/// Run in the group of configuration `t`, or not-applicable with the reason.
fn run_as(caps: &Capabilities, t: Negotiation, policy: Policy) -> Decision {
    match express(caps, t, policy) {
        Ok(group) => Decision::Run(group),
        Err(reason) => Decision::NotApplicable(reason),
    }
}

/// A peer that is no partner meets a server configured like the peer
/// itself: were it a partner it could authenticate, so a refusal is the
/// allowlist's.
fn stranger(caps: &Capabilities, peer: Negotiation, policy: Policy) -> Decision {
    if caps.partner_allowlist.scope == Scope::None {
        return Decision::NotApplicable(caps.partner_allowlist.why_not("a partner allowlist"));
    }
    run_as(caps, peer, policy)
}

/// A scripted scenario runs when its partner entry is a plain federated
/// partner the server can express and no step relies on the reference
/// target's own users (the echo user that proves delivery).
fn decide_script(caps: &Capabilities, script: &Script, policy: Policy) -> Decision {
    let na = Decision::NotApplicable;
    let Some(partner) = &script.partner else {
        return stranger(caps, script.peer.negotiation, policy);
    };
    if partner.partner_type != PartnerType::Federated {
        return na(format!(
            "the scenario needs partner type `{}` (SPEC §7); the server has no partner types",
            partner.partner_type
        ));
    }
    let unrendered = [
        (
            !partner.additional_domains.is_empty(),
            "additional partner domains",
        ),
        (
            partner.connection_limit.is_some(),
            "a per-partner connection limit",
        ),
        (partner.keep_alive, "per-partner keep-alives"),
    ];
    if let Some((_, what)) = unrendered.iter().find(|(needed, _)| *needed) {
        return na(format!(
            "the scenario needs {what} (SPEC §2), which the managed runner does not render"
        ));
    }
    if script.peer.dns == DnsVariant::ProxyFqdn && caps.proxy_fqdn.scope == Scope::None {
        return na(caps.proxy_fqdn.why_not("a proxy FQDN"));
    }
    if let Some(step) = script.steps.iter().find(|s| relies_on_local_users(s)) {
        return na(format!(
            "step at {}:{} (`{}`) relies on a user of the target (the reference target's echo \
             user proves delivery); a managed server has no user s2spec can observe",
            script.file, step.line, step.source
        ));
    }
    run_as(caps, partner.negotiation, policy)
}

/// Delivery checks and stanzas addressed to `user@{target}`.
fn relies_on_local_users(step: &Step) -> bool {
    matches!(step.action, Action::ExpectDelivery { .. }) || step.source.contains("@{target}")
}

/// Cases split into groups (in a stable order) and not-applicable ones.
#[derive(Debug, Default)]
pub struct Plan {
    pub groups: BTreeMap<Group, Vec<Case>>,
    pub not_applicable: Vec<(Case, String)>,
}

pub fn plan(caps: &Capabilities, cases: &[Case], policy: Policy) -> Plan {
    let mut out = Plan::default();
    for case in cases {
        match decide(caps, case, policy) {
            Decision::Run(g) => out.groups.entry(g).or_default().push(case.clone()),
            Decision::NotApplicable(r) => out.not_applicable.push((case.clone(), r)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::CertVariant;
    use crate::scenario::pairing_id;

    fn frag(settings: &[&str], modules: &[&str]) -> Fragment {
        Fragment {
            settings: settings.iter().map(|s| s.to_string()).collect(),
            modules: modules.iter().map(|s| s.to_string()).collect(),
            ..Fragment::default()
        }
    }

    fn cap(scope: Scope, values: &[(&str, Fragment)]) -> Capability {
        Capability {
            scope,
            how: None,
            reason: (scope == Scope::None).then(|| "cannot, because".to_string()),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    /// Prosody's map, in miniature.
    fn all_global() -> Capabilities {
        Capabilities {
            tls: cap(
                Scope::Global,
                &[
                    ("required", frag(&["req"], &[])),
                    ("optional", frag(&["opt"], &[])),
                    ("not-supported", frag(&["none"], &[])),
                ],
            ),
            sasl: cap(
                Scope::Global,
                &[("on", frag(&[], &["saslauth"])), ("off", frag(&[], &[]))],
            ),
            dialback: cap(
                Scope::Global,
                &[("on", frag(&[], &["dialback"])), ("off", frag(&[], &[]))],
            ),
            policy: cap(Scope::Global, &[("lync", frag(&["lync"], &[]))]),
            partner_allowlist: cap(Scope::None, &[]),
            proxy_fqdn: cap(Scope::None, &[]),
            config_validation: cap(Scope::None, &[]),
        }
    }

    fn n(code: &str) -> Negotiation {
        Negotiation::from_code(code).unwrap()
    }

    fn pairing(t: &str, dns: DnsVariant) -> Case {
        let p = Pairing {
            target: n(t),
            peer: n("OO1"),
            direction: Direction::Inbound,
            cert: CertVariant::Valid,
            dns,
        };
        Case {
            id: pairing_id(&p),
            family: "plain".into(),
            description: String::new(),
            kind: CaseKind::Pairing(p),
        }
    }

    #[test]
    fn every_valid_row_is_expressible_with_three_global_switches() {
        let caps = all_global();
        let valid = Negotiation::all().filter(|t| crate::partner::negotiation_is_valid(*t));
        for t in valid {
            let g = express(&caps, t, Policy::Lync).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(g.methods(), methods(t).to_vec(), "{}", t.code());
        }
    }

    #[test]
    fn rows_with_the_same_methods_share_a_group() {
        let caps = all_global();
        let g = |c| express(&caps, n(c), Policy::Lync).unwrap();
        // RR1's dialback is inert (W2): the same server as RR0.
        assert_eq!(g("RR1"), g("RR0"));
        assert_eq!(g("RR0"), g("RO0"));
        assert_eq!(g("OR1"), g("OO1"));
        assert_ne!(g("RO1"), g("RO0"));
        assert_eq!(
            g("NN1"),
            Group {
                tls: Setting::NotSupported,
                sasl: false,
                dialback: true,
                policy: Policy::Lync
            }
        );
        let groups: std::collections::BTreeSet<_> = Negotiation::all()
            .filter(|t| crate::partner::negotiation_is_valid(*t))
            .map(|t| express(&caps, t, Policy::Lync).unwrap())
            .collect();
        assert_eq!(groups.len(), 7);
    }

    #[test]
    fn a_missing_value_is_not_applicable_with_the_reason() {
        let mut caps = all_global();
        caps.sasl.values.remove("off");
        let e = express(&caps, n("RN1"), Policy::Lync).unwrap_err();
        assert!(e.contains("RN1") && e.contains("sasl = off"), "{e}");
        assert!(e.contains("it can express: on"), "{e}");
        // A row that keeps SASL on is unaffected.
        assert!(express(&caps, n("RO1"), Policy::Lync).is_ok());
        // An unlisted policy profile.
        let e = express(&caps, n("RO1"), Policy::Strict).unwrap_err();
        assert!(e.contains("policy = strict"), "{e}");
    }

    #[test]
    fn a_server_whose_dialback_is_tcp_only_cannot_express_tls_dialback() {
        let mut caps = all_global();
        caps.tls.values.remove("optional");
        let e = express(&caps, n("ON1"), Policy::Lync).unwrap_err();
        assert!(e.contains("tls = optional"), "{e}");
    }

    /// ejabberd's shape: EXTERNAL is offered on every encrypted stream, so
    /// SASL cannot be switched off; where TLS is off that does not matter.
    #[test]
    fn a_switch_that_changes_nothing_takes_an_expressible_value() {
        let mut caps = all_global();
        caps.sasl.values.remove("off");
        // NN1: no TLS, so SASL "on" admits the same methods as "off".
        let g = express(&caps, n("NN1"), Policy::Lync).unwrap();
        assert!(g.sasl && g.dialback && g.tls == Setting::NotSupported);
        assert_eq!(g.methods(), methods(n("NN1")).to_vec());
        // RN1 needs EXTERNAL off while TLS is on: not expressible.
        let e = express(&caps, n("RN1"), Policy::Lync).unwrap_err();
        assert!(e.contains("sasl = off"), "{e}");
        // RR1 admits EXTERNAL only; a server whose dialback cannot be
        // switched off would also admit TLS dialback.
        let mut caps = all_global();
        caps.dialback.values.remove("off");
        assert!(express(&caps, n("RR1"), Policy::Lync).is_err());
        assert!(express(&caps, n("RO1"), Policy::Lync).is_ok());
    }

    fn stranger(direction: Direction, peer: &str) -> Case {
        Case {
            id: "stranger".into(),
            family: "stranger".into(),
            description: String::new(),
            kind: CaseKind::Stranger {
                direction,
                peer: n(peer),
            },
        }
    }

    /// With an allowlist, an inbound stranger meets a server configured like
    /// itself (so only the allowlist can refuse it); outbound, the ping that
    /// would trigger the server comes from the stranger and proves nothing.
    #[test]
    fn strangers_run_against_a_server_that_could_otherwise_accept_them() {
        let mut caps = all_global();
        caps.partner_allowlist = cap(Scope::Global, &[("on", frag(&["allow"], &[]))]);
        assert_eq!(
            decide(&caps, &stranger(Direction::Inbound, "NN1"), Policy::Lync),
            Decision::Run(express(&caps, n("NN1"), Policy::Lync).unwrap())
        );
        match decide(&caps, &stranger(Direction::Outbound, "OO1"), Policy::Lync) {
            Decision::NotApplicable(r) => assert!(r.contains("ping"), "{r}"),
            other => panic!("{other:?}"),
        }
        // A stranger whose own configuration the server cannot mirror.
        caps.sasl.values.remove("off");
        assert!(matches!(
            decide(&caps, &stranger(Direction::Inbound, "RN1"), Policy::Lync),
            Decision::NotApplicable(_)
        ));
    }

    #[test]
    fn inexpressible_settings_give_their_reason() {
        let caps = all_global();
        match decide(&caps, &pairing("RO1", DnsVariant::ProxyFqdn), Policy::Lync) {
            Decision::NotApplicable(r) => assert_eq!(r, "cannot, because"),
            other => panic!("{other:?}"),
        }
        let stranger = Case {
            id: "matrix/in/t-none/p-OO1/valid/srv".into(),
            family: "stranger".into(),
            description: String::new(),
            kind: CaseKind::Stranger {
                direction: Direction::Inbound,
                peer: n("OO1"),
            },
        };
        assert!(matches!(
            decide(&caps, &stranger, Policy::Lync),
            Decision::NotApplicable(_)
        ));
        let config = Case {
            id: "config/NR0".into(),
            family: "config".into(),
            description: String::new(),
            kind: CaseKind::Config(n("NR0")),
        };
        assert!(matches!(
            decide(&caps, &config, Policy::Lync),
            Decision::NotApplicable(_)
        ));
        assert_eq!(
            decide(&caps, &pairing("OO1", DnsVariant::Srv), Policy::Lync),
            Decision::Run(express(&caps, n("OO1"), Policy::Lync).unwrap())
        );
    }

    #[test]
    fn per_domain_scope_is_reported_not_silently_ignored() {
        let mut caps = all_global();
        caps.dialback.scope = Scope::PerDomain;
        let e = express(&caps, n("OO1"), Policy::Lync).unwrap_err();
        assert!(e.contains("per-domain"), "{e}");
    }

    #[test]
    fn plan_splits_cases_and_keeps_every_one() {
        let caps = all_global();
        let cases = vec![
            pairing("RO1", DnsVariant::Srv),
            pairing("RR0", DnsVariant::Srv),
            pairing("RR1", DnsVariant::Srv),
            pairing("RO1", DnsVariant::ProxyFqdn),
        ];
        let p = plan(&caps, &cases, Policy::Lync);
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups.values().map(Vec::len).sum::<usize>(), 3);
        assert_eq!(p.not_applicable.len(), 1);
    }

    #[test]
    fn the_prosody_profile_parses_and_expresses_every_valid_row() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
        let p = Profile::named(&dir, "prosody").unwrap();
        assert!(p.template_path().is_file());
        for t in Negotiation::all().filter(|t| crate::partner::negotiation_is_valid(*t)) {
            express(&p.capabilities, t, Policy::Lync).unwrap();
        }
        // Strict (s2s_secure_auth) requires TLS on every stream: exactly the
        // rows with TLS required are expressible.
        for t in Negotiation::all().filter(|t| crate::partner::negotiation_is_valid(*t)) {
            let required = t.tls == Setting::Required;
            match express(&p.capabilities, t, Policy::Strict) {
                Ok(g) => {
                    assert!(required, "{}", t.code());
                    assert_eq!(g.policy, Policy::Strict);
                }
                Err(e) => assert!(
                    !required && e.contains("policy strict"),
                    "{}: {e}",
                    t.code()
                ),
            }
        }
    }

    /// Prosody's strict switch refuses a failing certificate even for
    /// dialback: the inbound cases where only dialback is shared and the
    /// certificate fails are not-applicable under strict, and only there.
    #[test]
    fn a_certificate_bound_policy_leaves_out_what_it_cannot_express() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
        let caps = Profile::named(&dir, "prosody").unwrap().capabilities;
        let case = |t: &str, peer: &str, cert, direction| Case {
            id: "x".into(),
            family: "certificates".into(),
            description: String::new(),
            kind: CaseKind::Pairing(Pairing {
                target: n(t),
                peer: n(peer),
                direction,
                cert,
                dns: DnsVariant::Srv,
            }),
        };
        let na = |c: &Case, p| matches!(decide(&caps, c, p), Decision::NotApplicable(_));
        let dialback_only = case("RN1", "RO1", CertVariant::Expired, Direction::Inbound);
        assert!(na(&dialback_only, Policy::Strict));
        assert!(!na(&dialback_only, Policy::Lync));
        // SASL shared: s2spec's strict policy refuses too, so it runs.
        let with_sasl = case("RO1", "RO1", CertVariant::Expired, Direction::Inbound);
        assert!(!na(&with_sasl, Policy::Strict));
        // A valid certificate, or the outbound direction, runs as well.
        assert!(!na(
            &case("RN1", "RO1", CertVariant::Valid, Direction::Inbound),
            Policy::Strict
        ));
        assert!(!na(
            &case("RN1", "RO1", CertVariant::Expired, Direction::Outbound),
            Policy::Strict
        ));
    }

    /// ejabberd: EXTERNAL cannot be switched off, so exactly the valid rows
    /// with TLS but without SASL are inexpressible; all the rest run in five
    /// instances.
    #[test]
    fn the_ejabberd_profile_parses_and_expresses_the_rows_with_external() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
        let p = Profile::named(&dir, "ejabberd").unwrap();
        assert!(p.template_path().is_file());
        assert_eq!(p.dns, DnsHookup::ResolvConf);
        let mut groups = std::collections::BTreeSet::new();
        for t in Negotiation::all().filter(|t| crate::partner::negotiation_is_valid(*t)) {
            let external_off = t.tls.enabled() && !methods(t).contains(Method::SaslOverTls);
            match express(&p.capabilities, t, Policy::Lync) {
                Ok(g) => {
                    assert!(!external_off, "{}", t.code());
                    groups.insert(g);
                }
                Err(e) => assert!(external_off && e.contains("sasl = off"), "{e}"),
            }
        }
        assert_eq!(groups.len(), 5);
        // Strict is ejabberd without dialback: only the SASL-only rows.
        for t in Negotiation::all().filter(|t| crate::partner::negotiation_is_valid(*t)) {
            let dialback = methods(t).contains(Method::TlsDialback)
                || methods(t).contains(Method::TcpDialback);
            let ok = express(&p.capabilities, t, Policy::Strict).is_ok();
            assert_eq!(ok, !dialback && t.tls.enabled(), "{}", t.code());
        }
    }

    /// Scenarios: plain federated partners run in the group of their
    /// configuration; partner types, per-partner extras and steps that need
    /// the reference target's users are not-applicable, each with its reason.
    #[test]
    fn scenarios_run_unless_they_need_what_a_managed_server_lacks() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let caps = Profile::named(&root.join("fixtures/targets"), "prosody")
            .unwrap()
            .capabilities;
        let cases = crate::scenario::load_all(&root.join("scenarios/matrix.toml")).unwrap();
        let decision = |id: &str| {
            let case = cases.iter().find(|c| c.id == id).expect(id);
            decide(&caps, case, Policy::Lync)
        };
        let na = |id: &str| match decision(id) {
            Decision::NotApplicable(r) => r,
            other => panic!("{id}: {other:?}"),
        };
        assert_eq!(
            decision("rfc6120/11.1/restricted-xml-comment"),
            Decision::Run(express(&caps, n("OO1"), Policy::Lync).unwrap())
        );
        assert!(na("xep0178/3/external-no-authzid").contains("alice@{target}"));
        assert!(na("spec/7/public-verified-subscription").contains("partner type"));
        assert!(na("spec/2/connection-limit").contains("connection limit"));
        assert!(na("spec/2/unlisted-subdomain").contains("additional partner domains"));
    }
}
