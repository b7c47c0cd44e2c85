//! A real server that s2spec starts and stops itself (a managed target):
//! the configuration is rendered from the profile's template and one
//! configuration group, the server runs as a foreground child on loopback
//! with fresh directories, and it is stopped by PID — on shutdown, and by
//! the guard's `Drop` on every other path (error, panic, cancellation).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::profile::{Group, Profile, ReadinessKind, S2S_PORT, Scope};
use crate::oracle::{Policy, expect};
use crate::report::{CaseResult, Verdict};
use crate::run::{Harness, Options};
use crate::scenario::{Case, CaseKind};

/// What the harness hands a managed server besides its profile and group.
pub struct Setup<'a> {
    /// The domain it serves.
    pub domain: &'a str,
    /// The mock DNS it must resolve through.
    pub dns: SocketAddr,
    /// Its certificate chain (leaf first) and key, PEM.
    pub chain_pem: &'a str,
    pub key_pem: &'a str,
    /// The CA it must trust, PEM.
    pub ca_pem: &'a str,
    /// Copy the server's log here (as `<group>.log`) when it stops.
    pub keep_logs: Option<&'a Path>,
    /// The partner domains, for servers that can refuse everybody else.
    pub partners: &'a [String],
}

/// A running managed server.
pub struct ManagedServer {
    name: String,
    addr: SocketAddr,
    /// Every named port (`s2s` is `addr`).
    ports: BTreeMap<String, SocketAddr>,
    domain: String,
    group: Group,
    guard: ChildGuard,
}

impl ManagedServer {
    /// Renders the configuration, starts the server and waits until it
    /// accepts connections. On any failure nothing is left running.
    pub async fn start(
        profile: &Profile,
        group: Group,
        setup: &Setup<'_>,
    ) -> Result<ManagedServer, String> {
        if let Some(why) = profile.unavailable() {
            return Err(why);
        }
        let run_dir = fresh_dir(&profile.name)?;
        // From here on the guard removes the directory (and the child).
        let mut guard = ChildGuard {
            child: None,
            run_dir: run_dir.clone(),
            log: profile.log_name.as_ref().map(|n| run_dir.join(n)),
            keep_logs: setup
                .keep_logs
                .map(|d| d.join(format!("{}.log", group_slug(&group)))),
        };
        let data_dir = run_dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| io_err(&data_dir, e))?;
        let write = |name: &str, text: &str| {
            let path = run_dir.join(name);
            std::fs::write(&path, text).map_err(|e| io_err(&path, e))?;
            Ok::<_, String>(path)
        };
        let cert_file = write("target.crt", setup.chain_pem)?;
        let key_file = run_dir.join("target.key");
        write_secret(&key_file, setup.key_pem)?;
        let ca_file = write("ca.pem", setup.ca_pem)?;
        let ports = free_ports(&profile.ports)?;
        let port = ports
            .get(S2S_PORT)
            .copied()
            .ok_or("the profile names no s2s port")?;
        let template = std::fs::read_to_string(profile.template_path())
            .map_err(|e| io_err(&profile.template_path(), e))?;
        let mut values = profile.values.clone();
        let mut fragments = group.fragments(&profile.capabilities)?;
        // SPEC §2: a server that can refuse non-partners always does.
        let allowlist = &profile.capabilities.partner_allowlist;
        if allowlist.scope == Scope::Global {
            fragments.push(
                allowlist
                    .values
                    .get("on")
                    .ok_or("capabilities.partner-allowlist: a global scope needs an `on` value")?,
            );
        }
        let modules: Vec<String> = profile
            .modules
            .iter()
            .chain(fragments.iter().flat_map(|f| f.modules.iter()))
            .fold(Vec::new(), |mut acc, m| {
                if !acc.contains(m) {
                    acc.push(m.clone());
                }
                acc
            });
        let settings: Vec<&String> = fragments.iter().flat_map(|f| &f.settings).collect();
        let path_str = |p: &Path| p.display().to_string();
        for (k, v) in [
            ("group", group.to_string()),
            ("run_dir", path_str(&run_dir)),
            ("data_dir", path_str(&data_dir)),
            ("cert_file", path_str(&cert_file)),
            ("key_file", path_str(&key_file)),
            ("ca_file", path_str(&ca_file)),
            // The older spelling of `{{port_s2s}}`.
            ("s2s_port", port.to_string()),
            (
                "dns_forward",
                format!("{}@{}", setup.dns.ip(), setup.dns.port()),
            ),
            ("dns_ip", setup.dns.ip().to_string()),
            // The same address as an Erlang tuple, e.g. `{127,64,0,1}`.
            ("dns_ip_erlang", erlang_ip(setup.dns.ip())),
            ("dns_port", setup.dns.port().to_string()),
            ("domain", setup.domain.to_string()),
            (
                "modules",
                modules
                    .iter()
                    .map(|m| profile.module_format.replace("{name}", m))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            (
                "partners",
                setup
                    .partners
                    .iter()
                    .map(|d| profile.partner_format.replace("{domain}", d))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        ] {
            values.insert(k.to_string(), v);
        }
        for (name, p) in &ports {
            values.insert(format!("port_{name}"), p.to_string());
        }
        // Settings may use the values too (`{{partners}}`).
        let settings = settings
            .iter()
            .map(|s| render(s, &values))
            .collect::<Result<Vec<_>, _>>()?;
        values.insert("settings".into(), settings.join("\n"));
        let config = render(&template, &values)?;
        let config_file = write(&profile.config_name, &config)?;
        for (name, text) in &profile.files {
            let text = render(text, &values).map_err(|e| format!("files.{name}: {e}"))?;
            write(name, &text)?;
        }
        let subst = |a: &str| {
            a.replace("{config}", &path_str(&config_file))
                .replace("{run_dir}", &path_str(&run_dir))
        };
        let args: Vec<String> = profile.command.iter().map(|a| subst(a)).collect();
        let out =
            std::fs::File::create(run_dir.join("stdout.txt")).map_err(|e| io_err(&run_dir, e))?;
        let err = out.try_clone().map_err(|e| io_err(&run_dir, e))?;
        let child = Command::new(&args[0])
            .args(&args[1..])
            .envs(profile.env.iter().map(|(k, v)| (k, subst(v))))
            .current_dir(&run_dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", args.join(" ")))?;
        guard.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_ready(profile, &mut guard, addr, setup.domain).await?;
        tracing::info!(target = %profile.name, %group, %addr, "managed target ready");
        Ok(ManagedServer {
            name: profile.name.clone(),
            addr,
            ports: ports
                .into_iter()
                .map(|(n, p)| (n, SocketAddr::from((Ipv4Addr::LOCALHOST, p))))
                .collect(),
            domain: setup.domain.to_string(),
            group,
            guard,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The address of a named port of the profile (`c2s`, ...).
    pub fn port(&self, name: &str) -> Option<SocketAddr> {
        self.ports.get(name).copied()
    }

    pub fn group(&self) -> Group {
        self.group
    }

    /// The server's PID (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.guard.child.as_ref().map(Child::id)
    }

    /// Asks the server to stop (the profile's signal), waits for it up to
    /// `grace`, then kills it; removes its directory.
    pub async fn shutdown(mut self, signal: &str, grace: Duration) {
        if let Some(child) = self.guard.child.as_mut() {
            let pid = child.id().to_string();
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(&pid)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = crate::clock::deadline(grace);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // The guard kills what is left, reaps it and removes the directory.
        drop(self.guard);
    }
}

/// Owns the child process and its directory: dropping it kills the process
/// by PID (SIGKILL), waits for it, keeps the log if asked, and removes the
/// directory. This runs on every exit path, including unwinding.
struct ChildGuard {
    child: Option<Child>,
    run_dir: PathBuf,
    log: Option<PathBuf>,
    keep_logs: Option<PathBuf>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if let (Some(log), Some(keep)) = (&self.log, &self.keep_logs) {
            if let Some(parent) = keep.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::copy(log, keep);
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

async fn wait_ready(
    profile: &Profile,
    guard: &mut ChildGuard,
    addr: SocketAddr,
    domain: &str,
) -> Result<(), String> {
    // A profile's number may be absurd; the deadline saturates.
    let deadline = crate::clock::deadline(Duration::from_millis(profile.readiness.timeout_ms));
    loop {
        if let Some(child) = guard.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(format!(
                "{} exited ({status}) before it was ready:\n{}",
                profile.name,
                guard.tail()
            ));
        }
        let ready = match profile.readiness.kind {
            ReadinessKind::TcpConnect => tokio::net::TcpStream::connect(addr).await.is_ok(),
            ReadinessKind::StreamHeader => answers_stream_header(addr, domain).await,
        };
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} was not ready on {addr} within {} ms ({:?}):\n{}",
                profile.name,
                profile.readiness.timeout_ms,
                profile.readiness.kind,
                guard.tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the server answers a server-to-server stream header with its
/// own: an accepting socket alone says little while a server still starts
/// (ejabberd accepts before it serves streams).
pub(crate) async fn answers_stream_header(addr: SocketAddr, domain: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
             xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
             from='readiness.s2spec.invalid' to='{domain}' version='1.0'>"
        );
        tcp.write_all(header.as_bytes()).await.ok()?;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&got).contains("stream:stream") {
            let n = tcp.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = tcp.write_all(b"</stream:stream>").await;
        Some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(()))
    )
}

impl ChildGuard {
    /// The last lines of the server's output and log, for error messages.
    fn tail(&self) -> String {
        let mut out = String::new();
        for path in [Some(self.run_dir.join("stdout.txt")), self.log.clone()]
            .into_iter()
            .flatten()
        {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let lines: Vec<&str> = text.lines().collect();
                let start = lines.len().saturating_sub(15);
                out.push_str(&format!("--- {}\n", path.display()));
                for l in &lines[start..] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// `{{name}}` placeholders replaced by `values`; an unknown one is an error.
pub fn render(template: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("template: `{{` without a closing `}}`".into());
        };
        let key = after[..end].trim();
        let value = values
            .get(key)
            .ok_or_else(|| format!("template: no value for {{{{{key}}}}}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An IP address as an Erlang tuple (for inetrc files).
fn erlang_ip(ip: std::net::IpAddr) -> String {
    let parts: Vec<String> = match ip {
        std::net::IpAddr::V4(v4) => v4.octets().iter().map(u8::to_string).collect(),
        std::net::IpAddr::V6(v6) => v6.segments().iter().map(u16::to_string).collect(),
    };
    format!("{{{}}}", parts.join(","))
}

/// A file-name-safe spelling of a group.
pub fn group_slug(g: &Group) -> String {
    format!(
        "tls-{}.sasl-{}.dialback-{}.{}",
        g.tls,
        if g.sasl { "on" } else { "off" },
        if g.dialback { "on" } else { "off" },
        g.policy
    )
}

fn io_err(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// The file in an instance directory that names the run owning it.
const OWNER_FILE: &str = "s2spec-owner";

/// A fresh, empty directory for one instance, readable by us only (it holds
/// the server's private key), marked with the owning process so that a later
/// run can remove it if this one is killed before it cleans up.
fn fresh_dir(name: &str) -> Result<PathBuf, String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    remove_dead_instances(&std::env::temp_dir());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "s2spec-{name}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).map_err(|e| io_err(&dir, e))?;
    let owner = dir.join(OWNER_FILE);
    if let Err(e) = std::fs::write(&owner, owner_line(std::process::id())) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(io_err(&owner, e));
    }
    Ok(dir)
}

/// One loopback port per name, each free a moment ago; the listeners are
/// held until all are chosen, so the ports differ.
fn free_ports(names: &[String]) -> Result<BTreeMap<String, u16>, String> {
    let mut held = Vec::new();
    let mut ports = BTreeMap::new();
    for name in names {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("no free loopback port for `{name}`: {e}"))?;
        let port = l
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| format!("no free loopback port for `{name}`: {e}"))?;
        held.push(l);
        ports.insert(name.clone(), port);
    }
    Ok(ports)
}

/// `PID START` of a process: the start time (clock ticks after boot, field
/// 22 of /proc/PID/stat) tells a reused PID from the original owner.
fn owner_line(pid: u32) -> String {
    format!("{pid} {}\n", start_time(pid).unwrap_or_default())
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Removes the instance directories under `tmp` whose owning run is gone
/// (killed by SIGKILL, or crashed), with the keys they hold. Directories
/// of live runs, and anything without our owner file, are left alone.
pub fn remove_dead_instances(tmp: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("s2spec-"));
        if !is_ours || !path.is_dir() {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        let mut fields = owner.split_whitespace();
        let (Some(pid), start) = (
            fields.next().and_then(|p| p.parse::<u32>().ok()),
            fields.next().and_then(|s| s.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let alive = match (start_time(pid), start) {
            (None, _) => false,
            (Some(now), Some(then)) if then != 0 => now == then,
            (Some(_), _) => true,
        };
        if !alive && std::fs::remove_dir_all(&path).is_ok() {
            tracing::info!(dir = %path.display(), pid, "removed the instance directory of a dead run");
            removed.push(path);
        }
    }
    removed
}

/// Writes a private key, readable by its owner only from the first byte on.
fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| io_err(path, e))
}

/// Where a managed run's server logs go, and how it behaves.
#[derive(Debug, Clone, Default)]
pub struct ManagedOptions {
    /// Keep each instance's log here as `<group>.log`.
    pub keep_logs: Option<PathBuf>,
}

/// Runs `cases` against the server of `profile`: one instance per
/// configuration group, one after the other; cases the server cannot be
/// configured for come back `not-applicable` with the reason. Every instance
/// is stopped before this returns (or, on cancellation, when dropped).
pub async fn run_managed(
    profile: &Profile,
    cases: Vec<Case>,
    options: Options,
    managed: ManagedOptions,
    done: impl Fn(&CaseResult) + Send + Sync + Clone + 'static,
) -> Result<Vec<CaseResult>, String> {
    if let Some(why) = profile.unavailable() {
        return Err(why);
    }
    let plan = super::profile::plan(&profile.capabilities, &cases, options.policy);
    let mut results = Vec::new();
    for (case, reason) in plan.not_applicable {
        let r = not_applicable(&case, reason, options.policy);
        done(&r);
        results.push(r);
    }
    for (group, cases) in plan.groups {
        let partners = partner_domains(&cases);
        let needs_users = cases.iter().any(|c| match &c.kind {
            CaseKind::Script(s) => super::profile::needs_local_users(s),
            _ => false,
        });
        let started = Harness::start_managed(
            profile,
            group,
            &partners,
            options.clone(),
            managed.keep_logs.clone(),
            needs_users,
        )
        .await;
        let harness = match started {
            Ok(harness) => harness,
            // The other groups may still run; these cases say why they did not.
            Err(e) => {
                let why = format!(
                    "harness error: {} ({group}) did not start: {e}",
                    profile.name
                );
                for case in &cases {
                    let r = crate::run::lost_case(case, why.clone());
                    done(&r);
                    results.push(r);
                }
                continue;
            }
        };
        let harness = std::sync::Arc::new(harness);
        let group_results = harness.run(cases, done.clone()).await;
        if let Ok(h) = std::sync::Arc::try_unwrap(harness) {
            h.shutdown().await;
        }
        results.extend(group_results);
    }
    Ok(results)
}

/// The peer domains of the pairing cases and the partner scenarios: the
/// partners an instance knows.
fn partner_domains(cases: &[Case]) -> Vec<String> {
    let mut domains: Vec<String> = cases
        .iter()
        .filter_map(|c| match &c.kind {
            CaseKind::Pairing(p) => Some(crate::scenario::peer_domain(p)),
            CaseKind::Script(s) if s.partner.is_some() => Some(s.domain()),
            _ => None,
        })
        .collect();
    domains.sort();
    domains.dedup();
    domains
}

fn not_applicable(case: &Case, reason: String, policy: Policy) -> CaseResult {
    let expected = match &case.kind {
        CaseKind::Pairing(p) => Some(crate::run::judge::expected_of(&expect(p, policy))),
        CaseKind::Stranger { .. } => Some(crate::run::judge::stranger_expected()),
        CaseKind::Config(_) | CaseKind::Script(_) => None,
    };
    CaseResult {
        id: case.id.clone(),
        family: case.family.clone(),
        description: case.description.clone(),
        verdict: Verdict::NotApplicable,
        expected,
        observed: None,
        messages: vec![reason],
        deviations: Vec::new(),
        duration_ms: 0,
        waited: Vec::new(),
        transcript: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_runs_lose_their_instance_dirs_and_live_ones_keep_them() {
        let tmp = std::env::temp_dir().join(format!("s2spec-sweep-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let dead = tmp.join("s2spec-prosody-dead");
        let live = tmp.join("s2spec-prosody-live");
        let foreign = tmp.join("s2spec-unmarked");
        for d in [&dead, &live, &foreign] {
            std::fs::create_dir(d).unwrap();
        }
        // PID 2^22 + 1 is above Linux's pid_max limit: never a live process.
        std::fs::write(dead.join(OWNER_FILE), "4194305 1\n").unwrap();
        std::fs::write(dead.join("target.key"), "secret").unwrap();
        std::fs::write(live.join(OWNER_FILE), owner_line(std::process::id())).unwrap();
        let removed = remove_dead_instances(&tmp);
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && foreign.exists());
        // A reused PID (same number, other start time) is not the owner.
        std::fs::write(live.join(OWNER_FILE), format!("{} 1\n", std::process::id())).unwrap();
        assert_eq!(remove_dead_instances(&tmp), vec![live.clone()]);
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn instance_dirs_and_keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = fresh_dir("perm-test").unwrap();
        let key = dir.join("target.key");
        write_secret(&key, "k").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&key), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn render_substitutes_and_refuses_unknown_placeholders() {
        let values: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        assert_eq!(render("x {{a}} {{ a }}", &values).unwrap(), "x 1 1");
        assert!(render("{{b}}", &values).unwrap_err().contains("{{b}}"));
        assert!(render("{{a", &values).is_err());
        assert_eq!(render("plain", &values).unwrap(), "plain");
    }
}
