//! A real server that s2spec starts and stops itself (a managed target):
//! the configuration is rendered from the profile's templates and one
//! configuration group, the server's processes run as foreground children
//! on loopback with a fresh directory, each probed for readiness before the
//! next starts, and they are stopped by PID in reverse order — on shutdown,
//! and by the guard's `Drop` on every other path (error, panic,
//! cancellation).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::profile::{Group, Process, Profile, ReadinessKind, S2S_PORT, Scope};

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
    /// Copy the server's logs here (as `<group>.log`, or
    /// `<group>.<process>.log` for a server of several processes) when it stops.
    pub keep_logs: Option<&'a Path>,
    /// The partner domains, for servers that can refuse everybody else.
    pub partners: &'a [String],
}

/// Why a managed server did not start. Nothing is left running either way.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Not installed, or it needs privileges this process lacks.
    #[error("{0}")]
    Unavailable(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no free loopback port for `{name}`: {source}")]
    Port {
        name: String,
        source: std::io::Error,
    },
    /// A capability value the group needs is missing from the profile.
    #[error("{0}")]
    Capability(String),
    /// The group's own settings cannot be expressed by the profile.
    #[error(transparent)]
    Inexpressible(#[from] crate::target::profile::Inexpressible),
    #[error("{place}: {source}")]
    Render { place: String, source: RenderError },
    #[error("cannot start {command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{who} exited ({status}) before it was ready:\n{tail}")]
    Exited {
        who: String,
        status: std::process::ExitStatus,
        tail: String,
    },
    #[error("{who} was not ready on {addr} within {timeout_ms} ms ({kind:?}):\n{tail}")]
    NotReady {
        who: String,
        addr: SocketAddr,
        timeout_ms: u64,
        kind: ReadinessKind,
        tail: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        path: path.to_path_buf(),
        source,
    }
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
    /// Renders the configuration, starts the server's processes in order,
    /// each waited for until ready. On any failure nothing is left running.
    pub async fn start(
        profile: &Profile,
        group: Group,
        setup: &Setup<'_>,
    ) -> Result<ManagedServer, StartError> {
        if let Some(why) = profile.unavailable() {
            return Err(StartError::Unavailable(why));
        }
        let run_dir = fresh_dir(&profile.name)?;
        let several = profile.processes.len() > 1;
        // From here on the guard removes the directory (and the children).
        let mut guard = ChildGuard {
            children: Vec::new(),
            run_dir: run_dir.clone(),
            logs: profile
                .processes
                .iter()
                .filter_map(|p| {
                    let log = p.log.as_ref()?;
                    let keep = setup.keep_logs.map(|d| {
                        d.join(if several {
                            format!("{}.{}.log", group_slug(&group), p.name)
                        } else {
                            format!("{}.log", group_slug(&group))
                        })
                    });
                    Some((run_dir.join(log), keep))
                })
                .collect(),
        };
        let data_dir = run_dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(io_err(&data_dir))?;
        let write = |name: &str, text: &str| {
            let path = run_dir.join(name);
            std::fs::write(&path, text).map_err(io_err(&path))?;
            Ok::<_, StartError>(path)
        };
        let cert_file = write("target.crt", setup.chain_pem)?;
        let key_file = run_dir.join("target.key");
        write_secret(&key_file, setup.key_pem)?;
        let cert_key_file = run_dir.join("target.pem");
        write_secret(
            &cert_key_file,
            &format!(
                "{}\n{}",
                setup.chain_pem.trim_end(),
                setup.key_pem.trim_start()
            ),
        )?;
        let ca_file = write("ca.pem", setup.ca_pem)?;
        let ports = free_ports(&profile.ports)?;
        let port = ports
            .get(S2S_PORT)
            .copied()
            .ok_or_else(|| StartError::Capability("the profile names no s2s port".into()))?;
        let mut fragments = group
            .fragments(&profile.capabilities)
            .map_err(StartError::Inexpressible)?;
        // SPEC §2: a server that can refuse non-partners always does.
        let allowlist = &profile.capabilities.partner_allowlist;
        if allowlist.scope == Scope::Global {
            fragments.push(allowlist.values.get("on").ok_or_else(|| {
                StartError::Capability(
                    "capabilities.partner-allowlist: a global scope needs an `on` value".into(),
                )
            })?);
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
        let path_str = |p: &Path| p.display().to_string();
        let config_file = profile.config_name.as_ref().map(|n| run_dir.join(n));
        let mut values = profile.values.clone();
        for (k, v) in [
            ("group", group.to_string()),
            ("run_dir", path_str(&run_dir)),
            ("data_dir", path_str(&data_dir)),
            ("cert_file", path_str(&cert_file)),
            ("key_file", path_str(&key_file)),
            ("cert_key_file", path_str(&cert_key_file)),
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
        if let Some(c) = &config_file {
            values.insert("config_file".into(), path_str(c));
        }
        for (name, p) in &ports {
            values.insert(format!("port_{name}"), p.to_string());
        }
        // Settings may use the values too (`{{partners}}`); each slot is
        // `{{settings}}` (the default one) or `{{settings_<slot>}}`.
        let mut slots: BTreeMap<String, Vec<String>> = std::iter::once(String::new())
            .chain(profile.settings_slots.iter().cloned())
            .map(|s| (s, Vec::new()))
            .collect();
        for f in &fragments {
            let filled = std::iter::once((String::new(), &f.settings))
                .chain(f.slots.iter().map(|(slot, lines)| (slot.clone(), lines)));
            for (slot, lines) in filled {
                for line in lines {
                    let text = render(line, &values).map_err(|source| StartError::Render {
                        place: if slot.is_empty() {
                            "settings".into()
                        } else {
                            format!("settings.{slot}")
                        },
                        source,
                    })?;
                    slots.entry(slot.clone()).or_default().push(text);
                }
            }
        }
        for (slot, lines) in slots {
            let key = if slot.is_empty() {
                "settings".to_string()
            } else {
                format!("settings_{slot}")
            };
            values.insert(key, lines.join("\n"));
        }
        let render_to = |place: &str, text: &str| {
            render(text, &values).map_err(|source| StartError::Render {
                place: place.to_string(),
                source,
            })
        };
        if let (Some(template), Some(config_file)) = (profile.template_path(), &config_file) {
            let text = std::fs::read_to_string(&template).map_err(io_err(&template))?;
            let config = render_to(&template.display().to_string(), &text)?;
            std::fs::write(config_file, config).map_err(io_err(config_file))?;
        }
        for (name, file) in &profile.templates {
            let template = profile.dir.join(file);
            let text = std::fs::read_to_string(&template).map_err(io_err(&template))?;
            write(name, &render_to(&template.display().to_string(), &text)?)?;
        }
        for (name, text) in &profile.files {
            write(name, &render_to(&format!("files.{name}"), text)?)?;
        }
        // Every template value, then the older single-brace spellings.
        let subst = |place: &str, a: &str| {
            let a = render_to(place, a)?;
            let a = match &config_file {
                Some(c) => a.replace("{config}", &path_str(c)),
                None => a,
            };
            Ok::<_, StartError>(a.replace("{run_dir}", &path_str(&run_dir)))
        };
        for process in &profile.processes {
            let args = process
                .command
                .iter()
                .map(|a| subst(&format!("process {} command", process.name), a))
                .collect::<Result<Vec<_>, _>>()?;
            let env = process
                .env
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        subst(&format!("process {} env.{k}", process.name), v)?,
                    ))
                })
                .collect::<Result<Vec<_>, StartError>>()?;
            let out_path = run_dir.join(format!("{}.stdout.txt", process.name));
            let out = std::fs::File::create(&out_path).map_err(io_err(&out_path))?;
            let err = out.try_clone().map_err(io_err(&out_path))?;
            let (program, rest) = args.split_first().ok_or_else(|| {
                StartError::Capability(format!("process {}: `command` is empty", process.name))
            })?;
            let child = Command::new(program)
                .args(rest)
                .envs(env)
                .current_dir(&run_dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|source| StartError::Spawn {
                    command: args.join(" "),
                    source,
                })?;
            guard.children.push(Running {
                name: process.name.clone(),
                child,
                stop: process.stop.clone(),
            });
            let who = if several {
                format!("{} process `{}`", profile.name, process.name)
            } else {
                profile.name.clone()
            };
            let probe_port = ports.get(&process.readiness.port).copied().ok_or_else(|| {
                StartError::Capability(format!(
                    "process {}: readiness port `{}` is not among `ports`",
                    process.name, process.readiness.port
                ))
            })?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, probe_port));
            wait_ready(process, &who, &mut guard, addr, setup.domain).await?;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
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

    /// The PIDs of the server's processes (while they run), in start order.
    pub fn pids(&self) -> Vec<u32> {
        self.guard.children.iter().map(|r| r.child.id()).collect()
    }

    /// The instance directory (removed when the server stops).
    pub fn run_dir(&self) -> &Path {
        &self.guard.run_dir
    }

    /// Asks each process to stop (its profile's signal), the last started
    /// first, waits for it up to its grace time, then kills it; removes the
    /// directory.
    pub async fn shutdown(mut self) {
        while let Some(mut running) = self.guard.children.pop() {
            let pid = running.child.id().to_string();
            let _ = Command::new("kill")
                .arg(format!("-{}", running.stop.signal))
                .arg(&pid)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = crate::clock::deadline(Duration::from_millis(running.stop.grace_ms));
            while Instant::now() < deadline {
                if matches!(running.child.try_wait(), Ok(Some(_))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            running.kill();
        }
        // The guard keeps the logs and removes the directory.
        drop(self.guard);
    }
}

/// One started process and how it is asked to stop.
struct Running {
    name: String,
    child: Child,
    stop: super::profile::Stop,
}

impl Running {
    /// SIGKILL unless it has ended, then reap it.
    fn kill(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        tracing::debug!(process = %self.name, "managed process stopped");
    }
}

/// Owns the child processes and their directory: dropping it kills each
/// process by PID (SIGKILL, the last started first), waits for it, keeps the
/// logs if asked, and removes the directory. This runs on every exit path,
/// including unwinding.
struct ChildGuard {
    children: Vec<Running>,
    run_dir: PathBuf,
    /// Each log in the directory, and where to keep a copy.
    logs: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        while let Some(mut running) = self.children.pop() {
            running.kill();
        }
        for (log, keep) in &self.logs {
            if let Some(keep) = keep {
                if let Some(parent) = keep.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::copy(log, keep);
            }
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Waits until the process just started (the guard's last) is ready on
/// `addr`, or fails when it exits or the profile's timeout passes.
async fn wait_ready(
    process: &Process,
    who: &str,
    guard: &mut ChildGuard,
    addr: SocketAddr,
    domain: &str,
) -> Result<(), StartError> {
    let readiness = &process.readiness;
    // A profile's number may be absurd; the deadline saturates.
    let deadline = crate::clock::deadline(Duration::from_millis(readiness.timeout_ms));
    loop {
        if let Some(running) = guard.children.last_mut()
            && let Ok(Some(status)) = running.child.try_wait()
        {
            return Err(StartError::Exited {
                who: who.to_string(),
                status,
                tail: guard.tail(),
            });
        }
        let ready = match readiness.kind {
            ReadinessKind::TcpConnect => tokio::net::TcpStream::connect(addr).await.is_ok(),
            ReadinessKind::StreamHeader => answers_stream_header(addr, domain).await,
        };
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(StartError::NotReady {
                who: who.to_string(),
                addr,
                timeout_ms: readiness.timeout_ms,
                kind: readiness.kind,
                tail: guard.tail(),
            });
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
        let outputs = self
            .children
            .iter()
            .map(|r| self.run_dir.join(format!("{}.stdout.txt", r.name)));
        for path in outputs.chain(self.logs.iter().map(|(log, _)| log.clone())) {
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

/// Why a template did not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("template: `{{{{` without a closing `}}}}`")]
    Unclosed,
    #[error("template: no value for {{{{{0}}}}}")]
    NoValue(String),
}

/// `{{name}}` placeholders replaced by `values`; an unknown one is an error.
pub fn render(template: &str, values: &BTreeMap<String, String>) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(RenderError::Unclosed);
        };
        let key = after[..end].trim();
        let value = values
            .get(key)
            .ok_or_else(|| RenderError::NoValue(key.to_string()))?;
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
        "tls-{}.sasl-{}.dialback-{}.{}{}",
        g.tls,
        if g.sasl { "on" } else { "off" },
        if g.dialback { "on" } else { "off" },
        g.policy,
        if g.bidi { ".bidi" } else { "" }
    )
}

/// The file in an instance directory that names the run owning it.
const OWNER_FILE: &str = "s2spec-owner";

/// A fresh, empty directory for one instance, readable by us only (it holds
/// the server's private key), marked with the owning process so that a later
/// run can remove it if this one is killed before it cleans up.
fn fresh_dir(name: &str) -> Result<PathBuf, StartError> {
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
    builder.create(&dir).map_err(io_err(&dir))?;
    let owner = dir.join(OWNER_FILE);
    if let Err(e) = std::fs::write(&owner, owner_line(std::process::id())) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(io_err(&owner)(e));
    }
    Ok(dir)
}

/// One loopback port per name, each free a moment ago; the listeners are
/// held until all are chosen, so the ports differ.
///
/// The server binds them only later, so they are taken below the kernel's
/// ephemeral range where it can: a port 0 bind returns an ephemeral port,
/// which the many outgoing connections of a run may take as their source
/// port in between (ejabberd then fails with `eaddrinuse`).
fn free_ports(names: &[String]) -> Result<BTreeMap<String, u16>, StartError> {
    let mut held = Vec::new();
    let mut ports = BTreeMap::new();
    for name in names {
        let no_port = |source| StartError::Port {
            name: name.clone(),
            source,
        };
        let l = match below_ephemeral() {
            Some(l) => l,
            None => TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(no_port)?,
        };
        let port = l.local_addr().map(|a| a.port()).map_err(no_port)?;
        held.push(l);
        ports.insert(name.clone(), port);
    }
    Ok(ports)
}

/// Where explicitly chosen ports start: above the well-known and commonly
/// configured ones.
const CHOSEN_PORTS_FROM: u16 = 10_000;

/// A listener on a random free loopback port between [`CHOSEN_PORTS_FROM`]
/// and the start of the ephemeral range, or `None` when the range is
/// unknown, too small or every try is taken.
fn below_ephemeral() -> Option<TcpListener> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u16 = range.split_whitespace().next()?.parse().ok()?;
    let span = low.checked_sub(CHOSEN_PORTS_FROM).filter(|s| *s >= 1_000)?;
    (0..32).find_map(|_| {
        let r = u16::from_le_bytes(crate::random::bytes::<2>().ok()?);
        TcpListener::bind((Ipv4Addr::LOCALHOST, CHOSEN_PORTS_FROM + r % span)).ok()
    })
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
fn write_secret(path: &Path, text: &str) -> Result<(), StartError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io_err(path))
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
        let err = render("{{b}}", &values).unwrap_err();
        assert_eq!(err, RenderError::NoValue("b".into()));
        assert!(err.to_string().contains("{{b}}"), "{err}");
        assert!(render("{{a", &values).is_err());
        assert_eq!(render("plain", &values).unwrap(), "plain");
    }
}
