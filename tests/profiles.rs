//! Profiles as data (docs/profiles.md): a server of several processes
//! starts in order with readiness per process and leaves nothing behind,
//! on shutdown, on a failed start and when dropped; profile errors name the
//! file, the line and the key; every example of docs/profiles.md loads.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use s2spec::oracle::Policy;
use s2spec::partner::Negotiation;
use s2spec::target::managed::{ManagedServer, Setup, StartError};
use s2spec::target::profile::{Profile, express};

fn setup<'a>(partners: &'a [String]) -> Setup<'a> {
    Setup {
        domain: "target.test",
        dns: "127.0.0.1:5399".parse().unwrap(),
        chain_pem: "CHAIN\n",
        key_pem: "KEY\n",
        ca_pem: "CA\n",
        keep_logs: None,
        partners,
    }
}

/// Processes whose command line mentions `dir`.
fn processes_in(dir: &Path) -> Vec<String> {
    let marker = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&marker) {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Instance directories of this test process for `name`.
fn instance_dirs(name: &str) -> Vec<PathBuf> {
    common::instance_dirs_with(&format!("s2spec-{name}-{}-", std::process::id()))
}

fn gone(pid: u32) -> bool {
    // A reaped child has no /proc entry; a zombie would still show `Z`.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_err()
}

/// A scratch directory removed when dropped, also when a test fails.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tests here share one profile name; each gets its own copy so that
/// the leftover checks see only their own instances.
fn copy_as(name: &str, edit: impl Fn(String) -> String) -> (Scratch, Profile) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets/test");
    let dir = std::env::temp_dir().join(format!(
        "s2spec-profiles-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        src.join("two-listeners.conf.tmpl"),
        dir.join("two-listeners.conf.tmpl"),
    )
    .unwrap();
    let text = edit(std::fs::read_to_string(src.join("two-listeners.toml")).unwrap());
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let scratch = Scratch(dir);
    let profile = Profile::load(&path).unwrap();
    assert_eq!(profile.name, name, "a profile is named after its file");
    (scratch, profile)
}

fn group(profile: &Profile) -> s2spec::target::profile::Group {
    express(
        &profile.capabilities,
        Negotiation::from_code("RO1").unwrap(),
        Policy::Lync,
    )
    .unwrap()
}

#[tokio::test]
async fn two_processes_start_in_order_each_ready_and_leave_nothing_behind() {
    let (dir, profile) = copy_as("two-ok", |t| t);
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    assert_eq!(profile.processes.len(), 2);
    let partners = vec!["peer.s2s.test".to_string()];
    let server = ManagedServer::start(&profile, group(&profile), &setup(&partners))
        .await
        .unwrap();
    let run_dir = server.run_dir().to_path_buf();
    let pids = server.pids();
    assert_eq!(pids.len(), 2);
    // Both ports were probed before `start` returned, and still accept.
    let component = server.port("component").unwrap();
    assert_ne!(component, server.addr());
    for addr in [server.addr(), component] {
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    }
    // Template values reached the commands, the environments and the files.
    let read = |name: &str| std::fs::read_to_string(run_dir.join(name)).unwrap();
    let router = read("router.seen");
    assert!(
        router.starts_with(&format!(
            "router {} {}",
            server.addr().port(),
            run_dir.join("two.conf").display()
        )),
        "{router}"
    );
    assert!(router.contains("127.0.0.1:5399"), "{router}");
    let seen = read("component.seen");
    assert!(
        seen.contains(&run_dir.join("target.pem").display().to_string()),
        "{seen}"
    );
    assert!(seen.contains("127.0.0.1@5399"), "{seen}");
    assert_eq!(read("target.pem"), "CHAIN\nKEY\n");
    let config = read("two.conf");
    assert!(
        config.starts_with("# hello from target.test (tls=required"),
        "{config}"
    );
    assert!(
        config.contains("tls = required\nsasl = on\ndialback = on"),
        "{config}"
    );
    assert!(
        config.contains("[router]\nrouter tls = required\nallow \"peer.s2s.test\""),
        "{config}"
    );
    assert_eq!(
        processes_in(&run_dir).len(),
        2,
        "{:?}",
        processes_in(&run_dir)
    );

    server.shutdown().await;
    assert!(pids.iter().all(|p| gone(*p)), "{pids:?}");
    assert!(processes_in(&run_dir).is_empty());
    assert!(!run_dir.exists());
    assert!(instance_dirs("two-ok").is_empty());
    drop(dir);
}

/// The second process dies before it is ready: the error names it, and the
/// first one, already running, is stopped with the directory removed.
#[tokio::test]
async fn a_process_that_dies_before_it_is_ready_leaves_nothing_behind() {
    let (dir, profile) = copy_as("two-dies", |t| {
        t.replace(
            r#""component", "{{port_component}}""#,
            r#""component", "not-a-port""#,
        )
    });
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let partners = Vec::new();
    let err = ManagedServer::start(&profile, group(&profile), &setup(&partners))
        .await
        .err()
        .expect("the component cannot start");
    assert!(matches!(err, StartError::Exited { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("two-dies process `component` exited"),
        "{text}"
    );
    // The tail of the component's output explains why.
    assert!(text.contains("ValueError"), "{text}");
    assert!(instance_dirs("two-dies").is_empty());
    let marker = format!("s2spec-two-dies-{}-", std::process::id());
    assert!(processes_in(Path::new(&marker)).is_empty());
    drop(dir);
}

/// A server dropped without `shutdown` (an error or a panic elsewhere) is
/// killed by its guard, every process of it.
#[tokio::test]
async fn a_dropped_server_takes_every_process_with_it() {
    let (dir, profile) = copy_as("two-dropped", |t| t);
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let partners = Vec::new();
    let server = ManagedServer::start(&profile, group(&profile), &setup(&partners))
        .await
        .unwrap();
    let (pids, run_dir) = (server.pids(), server.run_dir().to_path_buf());
    drop(server);
    let started = Instant::now();
    while !pids.iter().all(|p| gone(*p)) {
        assert!(started.elapsed() < Duration::from_secs(5), "{pids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!run_dir.exists());
    drop(dir);
}

/// Writes `text` as `name.toml` in a fresh directory and loads it.
fn load_text(name: &str, text: &str) -> (PathBuf, Result<Profile, String>) {
    let dir = std::env::temp_dir().join(format!(
        "s2spec-profiles-load-{name}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let loaded = Profile::load(&path).map_err(|e| e.to_string());
    std::fs::remove_dir_all(&dir).unwrap();
    (path, loaded)
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// The line of the first line of `text` that starts with `prefix`.
fn line_starting(text: &str, prefix: &str) -> usize {
    1 + text.lines().position(|l| l.starts_with(prefix)).unwrap()
}

#[test]
fn profile_errors_name_the_file_the_line_and_the_key() {
    let prosody = shipped("fixtures/targets/prosody.toml");
    // An unknown top-level key.
    let text = prosody.replace("program = \"prosody\"", "programme = \"prosody\"");
    let (path, got) = load_text("typo", &text);
    let e = got.unwrap_err();
    let line = line_starting(&text, "programme");
    assert!(
        e.starts_with(&format!("{}:{line}: ", path.display())),
        "{e}"
    );
    assert!(e.contains("programme"), "{e}");
    // An unknown value of a capability (serde cannot see it: a flattened map).
    let text = prosody.replace(
        "on = { modules = [\"saslauth\"] }",
        "onn = { modules = [\"saslauth\"] }",
    );
    let (path, got) = load_text("value", &text);
    let e = got.unwrap_err();
    let line = line_starting(&text, "onn = ");
    assert_eq!(
        e,
        format!(
            "{}:{line}: capabilities.sasl: unknown key `onn` (values: on, off; or scope, how, reason)",
            path.display()
        )
    );
    // A key of a process: in the [[process]] it belongs to.
    let two = shipped("fixtures/targets/test/two-listeners.toml");
    let text = two.replace(
        "stop = { signal = \"TERM\", grace-ms = 2000 }\n\n[capabilities",
        "stop = { signal = \"TERM\", grace-ms = 2000 }\nrestart = true\n\n[capabilities",
    );
    let (path, got) = load_text("process-key", &text);
    let e = got.unwrap_err();
    assert!(
        e.starts_with(&format!("{}:", path.display())) && e.contains("restart"),
        "{e}"
    );
    // A readiness port that is not named.
    let text = two.replace("port = \"component\"", "port = \"c2s\"");
    let (path, got) = load_text("port", &text);
    let e = got.unwrap_err();
    assert!(
        e.contains("readiness port \"c2s\" is not among `ports`"),
        "{e}"
    );
    assert!(e.starts_with(&format!("{}:", path.display())), "{e}");
    // Single-process keys beside a [[process]] list.
    let text = two.replace(
        "dns = \"forward\"",
        "dns = \"forward\"\ncommand = [\"true\"]",
    );
    let (path, got) = load_text("mixed", &text);
    let e = got.unwrap_err();
    let line = line_starting(&text, "command = ");
    assert!(
        e.starts_with(&format!(
            "{}:{line}: `command` belongs to a `[[process]]`",
            path.display()
        )),
        "{e}"
    );
    // A slot no `settings-slots` entry declares.
    let text = two.replace("settings-slots = [\"router\"]", "settings-slots = []");
    let (_, got) = load_text("slot", &text);
    assert!(
        got.unwrap_err()
            .contains("slot `router` is not among `settings-slots`")
    );
}

#[test]
fn a_named_profile_that_does_not_exist_lists_the_ones_that_do() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
    let e = Profile::find(&dir, "openfire").unwrap_err().to_string();
    assert!(e.contains("no target profile `openfire`"), "{e}");
    assert!(e.contains("ejabberd, prosody"), "{e}");
    // A path is any profile file, named after the file.
    let p = Profile::find(&dir, dir.join("test/two-listeners.toml").to_str().unwrap()).unwrap();
    assert_eq!(p.name, "two-listeners");
}

/// Every ```toml block of docs/profiles.md is a complete profile that loads.
#[test]
fn every_example_in_the_profile_reference_loads() {
    let doc = shipped("docs/profiles.md");
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in doc.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some((i + 1, String::new())),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some((_, text)), l) => {
                text.push_str(l);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 2, "{}", blocks.len());
    for (line, text) in blocks {
        let (_, got) = load_text(&format!("doc-example-{line}"), &text);
        if let Err(e) = got {
            panic!("docs/profiles.md:{line}: the example does not load: {e}");
        }
    }
}
