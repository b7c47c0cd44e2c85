//! Target profiles (`fixtures/targets/<name>.toml`, reference in
//! docs/profiles.md): how to run a real server — its processes, ports,
//! templates and files — and its capability map: which partner settings it
//! can express, globally or per remote domain. [`candidates`] is the pure
//! rule that turns a case into "run it in one of these configuration
//! groups" or "not applicable, because ...".

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::oracle::{
    Direction, DnsVariant, Pairing, Policy, certificate_defect, optional_identity,
};
use crate::partner::{Method, Negotiation, PartnerType, Setting, methods};
use crate::scenario::script::{Action, Need, Script};
use crate::scenario::{Case, CaseKind};

mod inexpressible;
pub use inexpressible::{ConfigurationProblem, Inexpressible, UnshareError};

/// A managed target's profile, resolved from its TOML file.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name: its file name without `.toml` (what `--target`
    /// and the report call it).
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
    /// The main configuration template, relative to the profile file, and
    /// the rendered file's name in the run directory (`{{config_file}}`).
    pub template: Option<PathBuf>,
    pub config_name: Option<String>,
    /// Further template files: rendered name in the run directory → template
    /// file relative to the profile file.
    pub templates: BTreeMap<String, PathBuf>,
    /// Further files written into the run directory: name → inline template.
    pub files: BTreeMap<String, String>,
    /// How the server reaches the mock DNS.
    pub dns: DnsHookup,
    /// Modules every instance loads.
    pub modules: Vec<String>,
    /// How one module is written in the `{{modules}}` list (`{name}`).
    pub module_format: String,
    /// How one partner domain is written in the `{{partners}}` list
    /// (`{domain}`), for a partner allowlist.
    pub partner_format: String,
    /// Fixed template values.
    pub values: BTreeMap<String, String>,
    /// The loopback ports the server listens on, by name: each gets a free
    /// port, written `{{port_<name>}}`. `s2s` is required (the port cases
    /// connect to; also `{{s2s_port}}`); `s2s_tls`, when named, is the
    /// direct-TLS port (XEP-0368).
    pub ports: Vec<String>,
    /// Named settings slots besides `{{settings}}`: `{{settings_<slot>}}`.
    pub settings_slots: Vec<String>,
    /// The server's processes, started in this order, stopped in reverse.
    pub processes: Vec<Process>,
    /// Local users s2spec creates and plays as clients over c2s.
    pub accounts: Option<Accounts>,
    pub capabilities: Capabilities,
    /// The directory of the profile file (templates are relative to it).
    pub dir: PathBuf,
}

/// One process of a managed server.
#[derive(Debug, Clone)]
pub struct Process {
    /// Names its output (`<name>.stdout.txt`) and errors; `server` for the
    /// single process of the top-level keys.
    pub name: String,
    /// The command line; every template value may be used.
    pub command: Vec<String>,
    /// Its environment; every template value may be used.
    pub env: BTreeMap<String, String>,
    /// Its log file's name in the run directory.
    pub log: Option<String>,
    pub readiness: Readiness,
    pub stop: Stop,
}

/// The file as written: the single-process keys (`command`, `env`,
/// `log-name`, `readiness`, `stop`) or an ordered `[[process]]` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProfile {
    description: String,
    program: String,
    install: String,
    version_file: Option<PathBuf>,
    version_command: Option<Vec<String>>,
    template: Option<PathBuf>,
    config_name: Option<String>,
    #[serde(default)]
    templates: BTreeMap<String, PathBuf>,
    log_name: Option<String>,
    command: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    readiness: Option<Readiness>,
    stop: Option<Stop>,
    #[serde(default, rename = "process")]
    processes: Vec<RawProcess>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    dns: DnsHookup,
    #[serde(default)]
    modules: Vec<String>,
    #[serde(default = "default_module_format")]
    module_format: String,
    #[serde(default = "default_partner_format")]
    partner_format: String,
    #[serde(default)]
    values: BTreeMap<String, String>,
    #[serde(default = "default_ports")]
    ports: Vec<String>,
    #[serde(default)]
    settings_slots: Vec<String>,
    accounts: Option<Accounts>,
    capabilities: Capabilities,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProcess {
    name: String,
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    log: Option<String>,
    readiness: Readiness,
    stop: Stop,
}

fn default_ports() -> Vec<String> {
    vec![S2S_PORT.into()]
}

/// The name of the port server-to-server streams use.
pub const S2S_PORT: &str = "s2s";

/// The name of the direct-TLS (XEP-0368) server-to-server port, when the
/// profile names one: scenarios that connect with `direct-tls` use it.
pub const S2S_DIRECT_TLS_PORT: &str = "s2s_tls";

/// The local users of a managed server, as data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Accounts {
    /// Local parts (`alice` is `alice@{target}`); passwords are generated per instance.
    pub users: Vec<String>,
    /// How they are created.
    pub provision: crate::c2s::Provision,
    /// The named port (from `ports`) clients connect to.
    pub port: String,
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
    /// The server can be given the mock DNS with its port (a configuration
    /// option, an inetrc, an environment variable): it listens on any free
    /// loopback port.
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
    /// The named port probed (from `ports`).
    #[serde(default = "s2s_port")]
    pub port: String,
}

fn s2s_port() -> String {
    S2S_PORT.into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadinessKind {
    /// The port accepts a TCP connection.
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
    /// Bidirectional streams (XEP-0288), value `on`: what a group of the
    /// scenarios that need them adds. Optional: absent is scope `none`.
    #[serde(default = "not_stated")]
    pub bidi: Capability,
}

fn not_stated() -> Capability {
    Capability {
        scope: Scope::None,
        how: None,
        reason: Some(
            "the profile states no way to offer bidirectional streams (XEP-0288): no \
             `[capabilities.bidi]`"
                .into(),
        ),
        values: BTreeMap::new(),
    }
}

impl Capabilities {
    /// Each capability with its key and the value names it may have.
    fn each(&self) -> [(&'static str, &Capability, &'static [&'static str]); 8] {
        const ON: &[&str] = &["on"];
        const ON_OFF: &[&str] = &["on", "off"];
        [
            ("tls", &self.tls, &["required", "optional", "not-supported"]),
            ("sasl", &self.sasl, ON_OFF),
            ("dialback", &self.dialback, ON_OFF),
            ("policy", &self.policy, &["lync", "strict"]),
            ("partner-allowlist", &self.partner_allowlist, ON),
            ("proxy-fqdn", &self.proxy_fqdn, ON),
            ("config-validation", &self.config_validation, ON),
            ("bidi", &self.bidi, ON_OFF),
        ]
    }
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
    /// The expressible values (names checked at load: serde cannot refuse
    /// unknown keys beside a flattened map).
    #[serde(flatten)]
    pub values: BTreeMap<String, Fragment>,
}

/// What one value of a setting puts into the configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Fragment {
    /// Lines for `{{settings}}`.
    #[serde(default)]
    pub settings: Vec<String>,
    /// Lines for the named slots: slot → lines for `{{settings_<slot>}}`.
    #[serde(default)]
    pub slots: BTreeMap<String, Vec<String>>,
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
    fn why_not(&self, what: &'static str) -> Inexpressible {
        Inexpressible::Capability {
            what,
            reason: self.reason.clone(),
        }
    }

    /// The fragment of `value`, or why it cannot be expressed.
    fn fragment(&self, setting: &'static str, value: &str) -> Result<&Fragment, Inexpressible> {
        if self.scope == Scope::None {
            return Err(self.why_not(setting));
        }
        self.values.get(value).ok_or_else(|| Inexpressible::Value {
            setting,
            value: value.to_owned(),
            known: self.values.keys().cloned().collect(),
        })
    }
}

/// Why a profile could not be loaded: the file, the line and the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read target profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Invalid UTF-8, at its line.
    #[error("{0}")]
    Text(crate::source::ReadError),
    #[error("{}:{line}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "no target profile `{name}`: {} does not exist (profiles in {}: {known}; or pass a \
         profile file, --target PATH.toml)",
        dir.join(format!("{name}.toml")).display(),
        dir.display()
    )]
    NotFound {
        name: String,
        dir: PathBuf,
        known: String,
    },
}

impl Profile {
    /// Reads a profile file; its name is the file's stem.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = crate::source::read_text(path).map_err(|e| match e {
            crate::source::ReadError::Io { path, source } => ProfileError::Read { path, source },
            utf8 => ProfileError::Text(utf8),
        })?;
        let at = |keys: &[String], message: String| ProfileError::Invalid {
            file: path.to_path_buf(),
            line: key_line(&text, keys).unwrap_or(1),
            message,
        };
        let raw: RawProfile = toml::from_str(&text).map_err(|e| ProfileError::Invalid {
            file: path.to_path_buf(),
            line: e
                .span()
                .map(|s| crate::source::line_of(&text, s.start))
                .unwrap_or(1),
            message: e.message().trim().to_string(),
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| at(&[], "the file name gives the profile no name".into()))?
            .to_string();
        let processes = single_or_list(&raw).map_err(|(keys, m)| at(&keys, m))?;
        let profile = Profile {
            name,
            description: raw.description,
            program: raw.program,
            install: raw.install,
            version_file: raw.version_file,
            version_command: raw.version_command,
            template: raw.template,
            config_name: raw.config_name,
            templates: raw.templates,
            files: raw.files,
            dns: raw.dns,
            modules: raw.modules,
            module_format: raw.module_format,
            partner_format: raw.partner_format,
            values: raw.values,
            ports: raw.ports,
            settings_slots: raw.settings_slots,
            processes,
            accounts: raw.accounts,
            capabilities: raw.capabilities,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        profile.check().map_err(|(keys, m)| at(&keys, m))?;
        Ok(profile)
    }

    /// `--target NAME` (`DIR/NAME.toml`) or `--target PATH.toml`.
    pub fn find(dir: &Path, target: &str) -> Result<Profile, ProfileError> {
        if target.ends_with(".toml") || target.contains('/') {
            return Profile::load(Path::new(target));
        }
        Profile::named(dir, target)
    }

    /// The profile of a named server under `dir` (`fixtures/targets`).
    pub fn named(dir: &Path, name: &str) -> Result<Profile, ProfileError> {
        let path = dir.join(format!("{name}.toml"));
        if !path.is_file() {
            let known = profile_files(dir)
                .iter()
                .filter_map(|p| p.file_stem()?.to_str().map(str::to_owned))
                .collect::<Vec<_>>();
            return Err(ProfileError::NotFound {
                name: name.to_string(),
                dir: dir.to_path_buf(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        Profile::load(&path)
    }

    /// What the file says beyond what serde checks, as the keys at fault
    /// and the message: ports, slots, templates, capability values.
    fn check(&self) -> Result<(), (Vec<String>, String)> {
        let err = |keys: &[&str], m: String| Err((keys.iter().map(|k| k.to_string()).collect(), m));
        if !self.ports.iter().any(|p| p == S2S_PORT) {
            return err(&["ports"], format!("`ports` must name \"{S2S_PORT}\""));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if !is_plain_name(p) {
                return err(
                    &["ports"],
                    format!("`ports`: {p:?} is not a plain name (letters, digits, _)"),
                );
            }
            if self.ports[..i].contains(p) {
                return err(&["ports"], format!("`ports`: {p:?} is named twice"));
            }
        }
        if let Some(a) = &self.accounts {
            if !self.ports.contains(&a.port) {
                return err(
                    &["accounts", "port"],
                    format!(
                        "`accounts.port` = {:?} is not among `ports` ({})",
                        a.port,
                        self.ports.join(", ")
                    ),
                );
            }
            if a.users.is_empty() {
                return err(&["accounts", "users"], "`accounts.users` is empty".into());
            }
        }
        if self.template.is_some() != self.config_name.is_some() {
            return err(
                &["template"],
                "`template` and `config-name` go together (the template and the name of the \
                 rendered file)"
                    .into(),
            );
        }
        for p in &self.processes {
            if !self.ports.contains(&p.readiness.port) {
                return err(
                    &["readiness", "port"],
                    format!(
                        "process `{}`: readiness port {:?} is not among `ports` ({})",
                        p.name,
                        p.readiness.port,
                        self.ports.join(", ")
                    ),
                );
            }
        }
        for s in &self.settings_slots {
            if !is_plain_name(s) {
                return err(
                    &["settings-slots"],
                    format!("`settings-slots`: {s:?} is not a plain name (letters, digits, _)"),
                );
            }
        }
        for (key, cap, allowed) in self.capabilities.each() {
            for (value, fragment) in &cap.values {
                if !allowed.contains(&value.as_str()) {
                    return Err((
                        vec!["capabilities".to_string(), key.to_string(), value.clone()],
                        format!(
                            "capabilities.{key}: unknown key `{value}` (values: {}; or scope, \
                             how, reason)",
                            allowed.join(", ")
                        ),
                    ));
                }
                if let Some(slot) = fragment
                    .slots
                    .keys()
                    .find(|s| !self.settings_slots.contains(s))
                {
                    return Err((
                        vec!["capabilities".to_string(), key.to_string(), value.clone()],
                        format!(
                            "capabilities.{key}.{value}: slot `{slot}` is not among \
                             `settings-slots` ({})",
                            self.settings_slots.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The main configuration template, when there is one.
    pub fn template_path(&self) -> Option<PathBuf> {
        self.template.as_ref().map(|t| self.dir.join(t))
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

/// The processes of a profile: the `[[process]]` list, or the one process
/// the top-level keys describe; mixing both is an error.
fn single_or_list(raw: &RawProfile) -> Result<Vec<Process>, (Vec<String>, String)> {
    let single = [
        ("command", raw.command.is_some()),
        ("env", raw.env.is_some()),
        ("log-name", raw.log_name.is_some()),
        ("readiness", raw.readiness.is_some()),
        ("stop", raw.stop.is_some()),
    ];
    let keys = |k: &str| vec![k.to_string()];
    if !raw.processes.is_empty() {
        if let Some((key, _)) = single.iter().find(|(_, set)| *set) {
            return Err((
                keys(key),
                format!(
                    "`{key}` belongs to a `[[process]]` when the profile lists processes \
                     (the top-level keys describe a server of one process)"
                ),
            ));
        }
        let mut out: Vec<Process> = Vec::new();
        for (i, p) in raw.processes.iter().enumerate() {
            let at = vec!["process".to_string(), i.to_string(), "name".to_string()];
            if !is_plain_name(&p.name) {
                return Err((
                    at,
                    format!(
                        "process {:?}: not a plain name (letters, digits, _)",
                        p.name
                    ),
                ));
            }
            if out.iter().any(|o| o.name == p.name) {
                return Err((at, format!("process {:?} is named twice", p.name)));
            }
            if p.command.is_empty() {
                let at = vec!["process".to_string(), i.to_string(), "command".to_string()];
                return Err((at, format!("process `{}`: `command` is empty", p.name)));
            }
            out.push(Process {
                name: p.name.clone(),
                command: p.command.clone(),
                env: p.env.clone(),
                log: p.log.clone(),
                readiness: p.readiness.clone(),
                stop: p.stop.clone(),
            });
        }
        return Ok(out);
    }
    let missing = |key: &str| {
        (
            Vec::new(),
            format!("missing `{key}` (or a `[[process]]` list)"),
        )
    };
    let command = raw.command.clone().ok_or_else(|| missing("command"))?;
    if command.is_empty() {
        return Err((keys("command"), "`command` is empty".into()));
    }
    Ok(vec![Process {
        name: "server".into(),
        command,
        env: raw.env.clone().unwrap_or_default(),
        log: raw.log_name.clone(),
        readiness: raw.readiness.clone().ok_or_else(|| missing("readiness"))?,
        stop: raw.stop.clone().ok_or_else(|| missing("stop"))?,
    }])
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `*.toml` files of a profile directory, sorted.
pub fn profile_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The line of the key at `keys` (table keys, array indices as numbers),
/// or of the deepest part of it that exists; `None` for an empty path.
fn key_line(text: &str, keys: &[impl AsRef<str>]) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut line = None;
    let mut keys = keys.iter().map(AsRef::as_ref).peekable();
    while let Some(key) = keys.next() {
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
            break;
        };
        line = Some(crate::source::line_of(text, k.span().start));
        let mut value = v.get_ref();
        // An array of tables: the next key is the index.
        if let DeValue::Array(items) = value {
            let Some(item) = keys
                .peek()
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| items.get(i))
            else {
                break;
            };
            keys.next();
            line = Some(crate::source::line_of(text, item.span().start));
            value = item.get_ref();
        }
        match value {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    line
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
fn can_unshare_mounts() -> Result<(), UnshareError> {
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(UnshareError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(UnshareError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
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
    /// Bidirectional streams (XEP-0288) offered: only for the scenarios
    /// that state `needs = ["bidi"]`, since a server that offers them
    /// answers the outbound trigger's ping on the inbound stream.
    pub bidi: bool,
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tls={} sasl={} dialback={} policy={}{}",
            self.tls,
            on_off(self.sasl),
            on_off(self.dialback),
            self.policy,
            if self.bidi { " bidi=on" } else { "" }
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
    pub fn fragments<'a>(
        &self,
        caps: &'a Capabilities,
    ) -> Result<Vec<&'a Fragment>, Inexpressible> {
        let mut fragments = vec![
            caps.tls.fragment("tls", self.tls.as_str())?,
            caps.sasl.fragment("sasl", on_off(self.sasl))?,
            caps.dialback.fragment("dialback", on_off(self.dialback))?,
            caps.policy.fragment("policy", &self.policy.to_string())?,
        ];
        // A profile without the capability says nothing about bidi, so only
        // a group that needs it takes a fragment.
        if self.bidi {
            fragments.push(caps.bidi.fragment("bidi", "on")?);
        }
        Ok(fragments)
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
pub fn express(
    caps: &Capabilities,
    t: Negotiation,
    policy: Policy,
) -> Result<Group, Inexpressible> {
    let want = methods(t);
    let natural = Group {
        tls: t.tls,
        sasl: want.contains(Method::SaslOverTls),
        dialback: want.contains(Method::TlsDialback) || want.contains(Method::TcpDialback),
        policy,
        bidi: false,
    };
    let reason = |problem: ConfigurationProblem| Inexpressible::Configuration {
        config: t,
        problem: Box::new(problem),
    };
    let how = || {
        caps.policy
            .how
            .clone()
            .unwrap_or_else(|| "the profile's policy switch".to_owned())
    };
    for (cap, name) in [
        (&caps.tls, "tls"),
        (&caps.sasl, "sasl"),
        (&caps.dialback, "dialback"),
        (&caps.policy, "policy"),
    ] {
        if cap.scope == Scope::PerDomain {
            return Err(reason(ConfigurationProblem::PerDomain(name)));
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
            return Err(reason(ConfigurationProblem::PolicyTls {
                policy,
                tls: g.tls,
                how: how(),
            }));
        }
        if let Some(m) = want.iter().find(|m| policy_value.excludes.contains(m)) {
            return Err(reason(ConfigurationProblem::PolicyExcludes {
                policy,
                method: m,
                how: how(),
            }));
        }
        return Ok(g);
    }
    // Nothing fits: explain with the natural spelling.
    natural
        .fragments(caps)
        .map_err(|e| reason(ConfigurationProblem::Setting(e)))?;
    Err(reason(ConfigurationProblem::Switches {
        natural,
        got: natural.methods(),
        want: want.to_vec(),
    }))
}

/// The decision for one case: its target configuration must be expressible,
/// and so must everything else the case relies on; it runs in the first of
/// its [`candidates`].
pub fn decide(caps: &Capabilities, case: &Case, policy: Policy) -> Decision {
    match candidates(caps, case, policy) {
        Ok(groups) => Decision::Run(groups[0]),
        Err(reason) => Decision::NotApplicable(reason.to_string()),
    }
}

/// Every group a case can run in, never empty, in the order of preference
/// (a scenario lists the configurations under which it holds), or why the
/// server cannot run it at all. Pure: the capability map and the case decide.
pub fn candidates(
    caps: &Capabilities,
    case: &Case,
    policy: Policy,
) -> Result<Vec<Group>, Inexpressible> {
    let na = |c: &Capability, what| Err(c.why_not(what));
    match &case.kind {
        CaseKind::Config(_) => {
            if caps.config_validation.scope == Scope::None {
                return na(&caps.config_validation, "a partner configuration");
            }
            Err(Inexpressible::InvalidConfiguration)
        }
        CaseKind::Stranger { direction, peer } => {
            if *direction == Direction::Outbound && caps.partner_allowlist.scope != Scope::None {
                // The ping that would make the server address the stranger
                // comes from the stranger itself, which the allowlist refuses:
                // a pass would prove nothing about the outbound side.
                return Err(Inexpressible::OutboundStranger);
            }
            stranger(caps, *peer, policy)
        }
        CaseKind::Script(script) => script_candidates(caps, script, policy),
        CaseKind::Pairing(p) => {
            if p.dns == DnsVariant::ProxyFqdn && caps.proxy_fqdn.scope == Scope::None {
                return na(&caps.proxy_fqdn, "a proxy FQDN");
            }
            if let Some(reason) = certificate_bound_mismatch(caps, p, policy) {
                return Err(reason);
            }
            run_as(caps, p.target, policy)
        }
    }
}

/// A server whose policy value refuses every failing certificate cannot
/// express what s2spec's policy expects where only dialback is shared and the
/// initiating certificate fails: s2spec expects dialback to proceed there.
fn certificate_bound_mismatch(
    caps: &Capabilities,
    p: &Pairing,
    policy: Policy,
) -> Option<Inexpressible> {
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
    Some(Inexpressible::CertificateBound {
        policy,
        how: caps
            .policy
            .how
            .clone()
            .unwrap_or_else(|| "the profile's policy switch".to_owned()),
        shared,
    })
}

/// Run in the group of configuration `t`, or not-applicable with the reason.
fn run_as(
    caps: &Capabilities,
    t: Negotiation,
    policy: Policy,
) -> Result<Vec<Group>, Inexpressible> {
    express(caps, t, policy).map(|g| vec![g])
}

/// A peer that is no partner meets a server configured like the peer
/// itself: were it a partner it could authenticate, so a refusal is the
/// allowlist's.
fn stranger(
    caps: &Capabilities,
    peer: Negotiation,
    policy: Policy,
) -> Result<Vec<Group>, Inexpressible> {
    if caps.partner_allowlist.scope == Scope::None {
        return Err(caps.partner_allowlist.why_not("a partner allowlist"));
    }
    run_as(caps, peer, policy)
}

/// A scripted scenario runs when its partner entry is a plain federated
/// partner the server can express. Steps that address the target's local
/// users run too: a managed server's own users (profile `[accounts]`) are
/// logged in as clients and observe delivery where the reference target's
/// echo user does it at the peer's server.
fn script_candidates(
    caps: &Capabilities,
    script: &Script,
    policy: Policy,
) -> Result<Vec<Group>, Inexpressible> {
    let na = Err;
    // What the scenario states it needs, before what its contents imply.
    for need in &script.needs {
        let lacking = match need {
            // The profile's `[accounts]`: checked where the profile is known
            // (`run::managed::plan`), and at the instance's login.
            Need::LocalUsers => None,
            Need::PartnerAllowlist => (caps.partner_allowlist.scope == Scope::None)
                .then(|| caps.partner_allowlist.why_not("a partner allowlist")),
            Need::ProxyFqdn => (caps.proxy_fqdn.scope == Scope::None)
                .then(|| caps.proxy_fqdn.why_not("a proxy FQDN")),
            Need::PartnerTypes => Some(Inexpressible::NoPartnerTypes),
            Need::Bidi => caps.bidi.fragment("bidi", "on").err(),
        };
        if let Some(why) = lacking {
            return na(Inexpressible::Needs {
                need: need.as_str(),
                why: Box::new(why),
            });
        }
    }
    let Some(partner) = &script.partner else {
        return stranger(caps, script.peer.negotiation, policy);
    };
    if partner.partner_type != PartnerType::Federated {
        return na(Inexpressible::PartnerType(partner.partner_type));
    }
    // What a federated partner's users may do without the local user's
    // approval (SPEC §7) is partner-type behaviour too: a server without
    // partner types leaves it to the user, so the scenario says nothing about it.
    if script.tags.iter().any(|t| t == PARTNER_TYPE_TAG) {
        return na(Inexpressible::PartnerTypeRules(partner.partner_type));
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
        return na(Inexpressible::Unrendered(what));
    }
    if script.peer.dns == DnsVariant::ProxyFqdn && caps.proxy_fqdn.scope == Scope::None {
        return na(caps.proxy_fqdn.why_not("a proxy FQDN"));
    }
    // A further peer domain that is no partner must be refused (SPEC §2):
    // only a server with a partner allowlist can.
    let non_partner = script
        .peer
        .domains
        .iter()
        .find(|d| !partner.additional_domains.contains(d));
    if let Some(d) = non_partner
        && caps.partner_allowlist.scope == Scope::None
    {
        return na(Inexpressible::NonPartner {
            domain: d.source.clone(),
            why: Box::new(caps.partner_allowlist.why_not("a partner allowlist")),
        });
    }
    let groups = configuration_groups(caps, partner.configurations(), policy)?;
    let bidi = script.needs.contains(&Need::Bidi);
    Ok(groups.into_iter().map(|g| Group { bidi, ..g }).collect())
}

/// The first of a scenario's configurations the server can express, in the
/// order the scenario lists them; when none fits, the reason of each. Pure.
#[cfg(test)]
fn choose_configuration(
    caps: &Capabilities,
    configurations: impl Iterator<Item = Negotiation>,
    policy: Policy,
) -> Decision {
    match configuration_groups(caps, configurations, policy) {
        Ok(groups) => Decision::Run(groups[0]),
        Err(reason) => Decision::NotApplicable(reason.to_string()),
    }
}

/// The groups of every configuration the server can express, in the order
/// the scenario lists them (each once); when none fits, the reason of each.
fn configuration_groups(
    caps: &Capabilities,
    configurations: impl Iterator<Item = Negotiation>,
    policy: Policy,
) -> Result<Vec<Group>, Inexpressible> {
    let (mut groups, mut reasons) = (Vec::new(), Vec::new());
    for n in configurations {
        match express(caps, n, policy) {
            Ok(group) if !groups.contains(&group) => groups.push(group),
            Ok(_) => {}
            Err(reason) => reasons.push(reason),
        }
    }
    if !groups.is_empty() {
        return Ok(groups);
    }
    Err(match reasons.len() {
        1 => reasons.remove(0),
        _ => Inexpressible::NoConfiguration(reasons),
    })
}

/// The tag of scenarios about partner-type rules (SPEC §7).
const PARTNER_TYPE_TAG: &str = "partner-type";

/// Whether a scenario addresses the target's local users (delivery checks,
/// stanzas to `user@{target}`): a managed target then logs its users in.
pub fn needs_local_users(script: &Script) -> bool {
    script.needs.contains(&Need::LocalUsers)
        || script.steps.iter().any(|step| {
            matches!(step.action, Action::ExpectDelivery { .. })
                || step.source.contains("@{target}")
        })
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
            bidi: cap(Scope::None, &[]),
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
                policy: Policy::Lync,
                bidi: false,
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
        let e = express(&caps, n("RN1"), Policy::Lync)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RN1") && e.contains("sasl = off"), "{e}");
        assert!(e.contains("it can express: on"), "{e}");
        // A row that keeps SASL on is unaffected.
        assert!(express(&caps, n("RO1"), Policy::Lync).is_ok());
        // An unlisted policy profile.
        let e = express(&caps, n("RO1"), Policy::Strict)
            .unwrap_err()
            .to_string();
        assert!(e.contains("policy = strict"), "{e}");
    }

    #[test]
    fn a_server_whose_dialback_is_tcp_only_cannot_express_tls_dialback() {
        let mut caps = all_global();
        caps.tls.values.remove("optional");
        let e = express(&caps, n("ON1"), Policy::Lync)
            .unwrap_err()
            .to_string();
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
        let e = express(&caps, n("RN1"), Policy::Lync)
            .unwrap_err()
            .to_string();
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
        let e = express(&caps, n("OO1"), Policy::Lync)
            .unwrap_err()
            .to_string();
        assert!(e.contains("per-domain"), "{e}");
    }

    #[test]
    fn the_prosody_profile_parses_and_expresses_every_valid_row() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
        let p = Profile::named(&dir, "prosody").unwrap();
        assert!(p.template_path().unwrap().is_file());
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
                    !required && e.to_string().contains("policy strict"),
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
        assert!(p.template_path().unwrap().is_file());
        assert_eq!(p.dns, DnsHookup::ResolvConf);
        let mut groups = std::collections::BTreeSet::new();
        for t in Negotiation::all().filter(|t| crate::partner::negotiation_is_valid(*t)) {
            let external_off = t.tls.enabled() && !methods(t).contains(Method::SaslOverTls);
            match express(&p.capabilities, t, Policy::Lync) {
                Ok(g) => {
                    assert!(!external_off, "{}", t.code());
                    groups.insert(g);
                }
                Err(e) => assert!(external_off && e.to_string().contains("sasl = off"), "{e}"),
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

    /// Every ordered choice of one or two valid configurations, on a server
    /// that can express everything, on one without SASL off (ejabberd's
    /// shape) and on one without dialback off: the first expressible one
    /// wins, in the order written; none expressible gives every reason.
    #[test]
    fn a_scenario_takes_the_first_configuration_the_server_can_express() {
        let full = all_global();
        let mut no_sasl_off = all_global();
        no_sasl_off.sasl.values.remove("off");
        let mut no_dialback_off = all_global();
        no_dialback_off.dialback.values.remove("off");
        let valid: Vec<Negotiation> = Negotiation::all()
            .filter(|t| crate::partner::negotiation_is_valid(*t))
            .collect();
        let mut lists: Vec<Vec<Negotiation>> = valid.iter().map(|a| vec![*a]).collect();
        for a in &valid {
            for b in valid.iter().filter(|b| b != &a) {
                lists.push(vec![*a, *b]);
            }
        }
        let mut ran = 0;
        let mut not_applicable = 0;
        for caps in [&full, &no_sasl_off, &no_dialback_off] {
            for list in &lists {
                let got = choose_configuration(caps, list.iter().copied(), Policy::Lync);
                let first = list
                    .iter()
                    .find_map(|n| express(caps, *n, Policy::Lync).ok());
                match (got, first) {
                    (Decision::Run(g), Some(want)) => {
                        assert_eq!(g, want, "{list:?}");
                        ran += 1;
                    }
                    (Decision::NotApplicable(r), None) => {
                        for n in list {
                            assert!(r.contains(&n.code()), "{list:?}: {r}");
                        }
                        not_applicable += 1;
                    }
                    (other, want) => panic!("{list:?}: {other:?}, wanted {want:?}"),
                }
            }
        }
        // The full server runs every list; the others miss some.
        assert!(
            ran > lists.len() && not_applicable > 0,
            "{ran} {not_applicable}"
        );
        // A list runs wherever any of its members can, in its first one's group.
        let rn1_ro1 = [n("RN1"), n("RO1")];
        assert_eq!(
            choose_configuration(&no_sasl_off, rn1_ro1.into_iter(), Policy::Lync),
            Decision::Run(express(&no_sasl_off, n("RO1"), Policy::Lync).unwrap())
        );
        assert_eq!(
            choose_configuration(&full, rn1_ro1.into_iter(), Policy::Lync),
            Decision::Run(express(&full, n("RN1"), Policy::Lync).unwrap())
        );
    }

    /// Scenarios: plain federated partners run in the group of their
    /// configuration, those addressing local users too; partner types and
    /// per-partner extras are not-applicable, each with its reason.
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
        assert_eq!(
            decision("xep0178/3/external-no-authzid"),
            Decision::Run(express(&caps, n("OO0"), Policy::Lync).unwrap())
        );
        assert!(na("spec/7/public-verified-subscription").contains("partner type"));
        assert!(na("spec/7/federated-subscription").contains("without the local user's approval"));
        // Prosody has no allowlist to refuse the second, non-partner domain.
        assert!(na("spec/2/dialback-non-partner").contains("no partner"));
        assert!(na("spec/2/connection-limit").contains("connection limit"));
        assert!(na("spec/2/unlisted-subdomain").contains("additional partner domains"));
    }

    /// A scenario that lists RN1 and RO1 (SASL plays no part) runs on
    /// ejabberd, which cannot switch EXTERNAL off, in RO1's group; the
    /// reference target's partner entry keeps the first, RN1.
    #[test]
    fn a_scenario_runs_on_ejabberd_in_the_first_configuration_it_can_express() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let caps = Profile::named(&root.join("fixtures/targets"), "ejabberd")
            .unwrap()
            .capabilities;
        let cases = crate::scenario::load_all(&root.join("scenarios/matrix.toml")).unwrap();
        let case = cases
            .iter()
            .find(|c| c.id == "spec/4.1/cleartext-dialback-tls-required")
            .unwrap();
        assert_eq!(
            decide(&caps, case, Policy::Lync),
            Decision::Run(express(&caps, n("RO1"), Policy::Lync).unwrap())
        );
        let CaseKind::Script(s) = &case.kind else {
            panic!("not a script")
        };
        let entry = s.partner_entry("target.test", None).unwrap();
        assert!(entry.contains("sasl = \"not-supported\""), "{entry}");
    }

    /// A scenario's stated `needs` decide before its partner configuration:
    /// a partner allowlist runs on ejabberd (which has one) and is
    /// not-applicable on Prosody with the profile's reason.
    #[test]
    fn stated_needs_are_checked_against_the_capability_map() {
        let text = |needs: &str| {
            format!(
                "id = \"rfc6120/4.1/needs-test\"\ntitle = \"t\"\nrefs = [\"RFC 6120 §4.1\"]\n\
                 level = \"MUST\"\nneeds = [{needs}]\n\n[partner]\ntype = \"federated\"\n\
                 tls = \"optional\"\nsasl = \"optional\"\ndialback = true\n\n[[step]]\nconnect = true\n"
            )
        };
        let case = |needs: &str| {
            crate::scenario::script_case(
                crate::scenario::script::parse_script(&text(needs), "x.toml").unwrap(),
            )
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
        let prosody = Profile::named(&dir, "prosody").unwrap().capabilities;
        let ejabberd = Profile::named(&dir, "ejabberd").unwrap().capabilities;
        let allowlist = case("\"partner-allowlist\"");
        match decide(&prosody, &allowlist, Policy::Lync) {
            Decision::NotApplicable(r) => {
                assert!(
                    r.starts_with(
                        "the scenario needs partner-allowlist (its `needs`): Prosody 0.12 federates"
                    ),
                    "{r}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&ejabberd, &allowlist, Policy::Lync),
            Decision::Run(_)
        ));
        assert!(matches!(
            decide(&prosody, &case(""), Policy::Lync),
            Decision::Run(_)
        ));
        let types = case("\"partner-types\"");
        assert!(matches!(
            decide(&ejabberd, &types, Policy::Lync),
            Decision::NotApplicable(_)
        ));
        // Stated local users make the instance log its users in.
        let CaseKind::Script(s) = &case("\"local-users\"").kind else {
            panic!("a script")
        };
        assert!(needs_local_users(s));
        // An unknown need is an error at its line.
        let e =
            crate::scenario::script::parse_script(&text("\"telepathy\""), "x.toml").unwrap_err();
        assert!(
            e.to_string().starts_with("x.toml:5:") && e.to_string().contains("telepathy"),
            "{e}"
        );
    }

    /// The bidi scenario runs on Prosody in a group of its own with
    /// mod_s2s_bidi, and nowhere on ejabberd; no other case gets bidi.
    #[test]
    fn only_a_scenario_that_needs_bidi_gets_a_bidi_group() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cases = crate::scenario::load_all(&root.join("scenarios/matrix.toml")).unwrap();
        let dir = root.join("fixtures/targets");
        let prosody = Profile::named(&dir, "prosody").unwrap().capabilities;
        let ejabberd = Profile::named(&dir, "ejabberd").unwrap().capabilities;
        for case in &cases {
            let wants = matches!(&case.kind, CaseKind::Script(s) if s.needs.contains(&Need::Bidi));
            if let Decision::Run(g) = decide(&prosody, case, Policy::Lync) {
                assert_eq!(g.bidi, wants, "{}", case.id);
                if wants {
                    let modules: Vec<&String> = g
                        .fragments(&prosody)
                        .unwrap()
                        .iter()
                        .flat_map(|f| &f.modules)
                        .collect();
                    assert!(modules.iter().any(|m| *m == "s2s_bidi"), "{modules:?}");
                }
            }
            if wants {
                match decide(&ejabberd, case, Policy::Lync) {
                    Decision::NotApplicable(r) => assert!(r.contains("XEP-0288"), "{r}"),
                    other => panic!("{}: {other:?}", case.id),
                }
            }
        }
        let bidi = cases
            .iter()
            .find(|c| c.id == "xep0288/2/bidi-capability")
            .unwrap();
        assert!(matches!(decide(&prosody, bidi, Policy::Lync), Decision::Run(g) if g.bidi));
    }

    #[test]
    fn ports_must_name_s2s_and_the_accounts_port() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
        let mut p = Profile::named(&dir, "prosody").unwrap();
        assert!(p.check().is_ok());
        let message = |p: &Profile| p.check().unwrap_err().1;
        p.ports = vec!["c2s".into()];
        assert!(message(&p).contains("s2s"));
        p.ports = vec!["s2s".into(), "s2s".into()];
        assert!(message(&p).contains("twice"));
        p.ports = vec!["s2s".into(), "c-2s".into()];
        assert!(message(&p).contains("plain name"));
        p.ports = vec!["s2s".into()];
        assert!(message(&p).contains("accounts.port"));
    }
}
