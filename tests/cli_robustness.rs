//! The command line against absurd flags, input files that are almost right,
//! and signals: every refusal is exit 2 with a message naming the flag or
//! FILE:LINE, and an interrupted run still reports what it finished.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use s2spec::report::read_json;

mod child;
use child::{BIN, Guard, run};

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_robustness-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn absurd_numbers_are_refused_with_the_flag_and_its_range() {
    let max = "18446744073709551615";
    for (args, flag, range) in [
        (vec!["run", "--jobs", max], "--jobs", "1..=65536"),
        (vec!["run", "--jobs", "0"], "--jobs", "1..=65536"),
        (vec!["run", "--timeout", "0"], "--timeout", "1..=86400"),
        (vec!["run", "--timeout", max], "--timeout", "1..=86400"),
        (
            vec!["run", "--timeout", "10000000000000000000"],
            "--timeout",
            "1..=86400",
        ),
        (
            vec![
                "serve",
                "--max-connections",
                max,
                "--partners",
                "p.toml",
                "--dns",
                "127.0.0.1:53",
                "--certs",
                "c",
            ],
            "--max-connections",
            "1..=1048576",
        ),
    ] {
        let out = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag) && err.contains(range), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A folder with the real matrix and one scenario file `bad.toml`.
fn scenario_dir(name: &str, bad: &[u8]) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::copy("scenarios/matrix.toml", dir.join("matrix.toml")).unwrap();
    std::fs::write(dir.join("bad.toml"), bad).unwrap();
    dir
}

const SCENARIO: &str = r#"id = "spec/2/robust-probe"
title = "t"
refs = ["SPEC §2"]
level = "MUST"
source = "configuration"

[partner]
type = "federated"
tls = "optional"
sasl = "optional"
dialback = true
PARTNER_EXTRA

[[step]]
connect = true
"#;

/// What `list` accepts, `run` can run: each of these made every run fail
/// with a message naming no file, and `list` said nothing.
#[test]
fn scenario_files_that_cannot_run_are_refused_at_their_line() {
    let long_id = format!("spec/2/{}", vec!["a".repeat(60); 4].join("/"));
    for (name, text, line, needle) in [
        (
            "limit0",
            SCENARIO.replace("PARTNER_EXTRA", "connection-limit = 0"),
            12,
            "connection-limit must be at least 1",
        ),
        (
            "long-id",
            SCENARIO
                .replace("spec/2/robust-probe", &long_id)
                .replace("PARTNER_EXTRA", ""),
            1,
            "longer than 253",
        ),
        (
            "bad-additional",
            SCENARIO.replace("PARTNER_EXTRA", "additional-domains = [\"a..{peer}\"]"),
            7,
            "partner entry cannot be configured",
        ),
    ] {
        let dir = scenario_dir(name, text.as_bytes());
        let matrix = dir.join("matrix.toml");
        let file = dir.join("bad.toml");
        for cmd in ["list", "run"] {
            let out = run(&[cmd, "--matrix", matrix.to_str().unwrap()]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{name} {cmd}: {err}");
            let at = format!("{}:{line}:", file.display());
            assert!(
                err.contains(&at) && err.contains(needle),
                "{name} {cmd}: {err}"
            );
        }
    }
}

#[test]
fn invalid_utf8_in_scenario_and_zone_files_names_the_line() {
    let mut bytes = SCENARIO.replace("PARTNER_EXTRA", "").into_bytes();
    let at = SCENARIO.find("title").unwrap() + "title = \"".len();
    bytes[at] = 0xff;
    let dir = scenario_dir("utf8", &bytes);
    let out = run(&[
        "list",
        "--matrix",
        dir.join("matrix.toml").to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!("{}:2: invalid UTF-8", dir.join("bad.toml").display());
    assert!(err.contains(&want), "{err}");

    let zone = dir.join("zone.toml");
    std::fs::write(&zone, b"[[zone]]\norigin = \"s2s.test\xc0\"\n").unwrap();
    let out = run(&[
        "dns",
        "--zone",
        zone.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want = format!("{}:2: invalid UTF-8", zone.display());
    assert!(err.contains(&want), "{err}");
}

/// SIGTERM in the middle of a run: exit 2, and the reports hold the cases
/// that finished, marked interrupted (JUnit too), instead of the previous
/// run's reports looking current.
#[test]
fn sigterm_writes_a_partial_report_marked_interrupted() {
    let dir = temp_dir("sigterm");
    let reports = dir.join("reports");
    let mut child = Command::new(BIN)
        // One case at a time, so the run is still far from done when the
        // first progress line arrives, however fast the machine.
        .args([
            "run",
            "--jobs",
            "1",
            "--report-dir",
            reports.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn s2spec");
    let err = child.stderr.take().unwrap();
    let mut guard = Guard(child);
    // Progress lines ("63/632 cases") say that cases are finishing.
    let mut lines = BufReader::new(err).lines();
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().and_then(Result::ok).unwrap_or_default();
        seen.push(line.clone());
        if line.ends_with(" cases") && line.contains('/') {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{seen:?}");
    }
    let pid = guard.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = guard.0.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("interrupted after")),
        "{rest:?}"
    );
    let report = read_json(&reports.join("report.json")).unwrap();
    assert!(report.run.interrupted);
    assert!(
        report.summary.total > 0 && report.summary.total < 632,
        "{:?}",
        report.summary
    );
    assert_eq!(report.summary.total, report.cases.len());
    let junit = std::fs::read_to_string(reports.join("junit.xml")).unwrap();
    assert!(junit.contains("interrupted"), "{junit}");
    for name in ["report.md", "report.html"] {
        let text = std::fs::read_to_string(reports.join(name)).unwrap();
        assert!(text.contains("INTERRUPTED"), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A managed server that cannot start loses no case: each case of its group
/// is an `error` naming the cause, and its instance directory is gone.
#[test]
fn a_managed_group_that_cannot_start_reports_each_case_as_an_error() {
    let profile = s2spec::target::profile::Profile::load(std::path::Path::new(
        "fixtures/targets/prosody.toml",
    ))
    .unwrap();
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED a_managed_group_that_cannot_start_reports_each_case_as_an_error: {why}");
        return;
    }
    let dir = temp_dir("broken-prosody");
    let profiles = dir.join("targets");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::copy(
        "fixtures/targets/prosody.toml",
        profiles.join("prosody.toml"),
    )
    .unwrap();
    // A configuration Prosody refuses to load: it exits before it is ready.
    std::fs::write(
        profiles.join("prosody.cfg.lua.tmpl"),
        "this is not lua {{domain}}\n",
    )
    .unwrap();
    let reports = dir.join("reports");
    let out = run(&[
        "run",
        "--target",
        "prosody",
        "--profiles",
        profiles.to_str().unwrap(),
        "--filter",
        "matrix/in/t-RR1/p-RR1/valid/srv",
        "--filter",
        "matrix/in/t-RR1/p-RR0/valid/srv",
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let report = read_json(&reports.join("report.json")).unwrap();
    assert_eq!(report.cases.len(), 2, "{err}");
    for case in &report.cases {
        assert_eq!(case.verdict, s2spec::report::Verdict::Error, "{}", case.id);
        assert!(
            case.messages[0].contains("did not start") && case.messages[0].contains("exited"),
            "{:?}",
            case.messages
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The instance directories (with the server's key) of a managed run `pid`.
fn instance_dirs(pid: u32) -> Vec<PathBuf> {
    common::instance_dirs_with(&format!("s2spec-prosody-{pid}-"))
}

/// The children of `pid` (from /proc/*/stat).
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|child| {
                    std::fs::read_to_string(format!("/proc/{child}/stat"))
                        .ok()
                        .and_then(|s| {
                            let after = &s[s.rfind(')')? + 1..];
                            after.split_whitespace().nth(1)?.parse::<u32>().ok()
                        })
                        == Some(pid)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A managed run that gets SIGTERM stops its server and removes its
/// directory; one that gets SIGKILL leaves the directory, which the next
/// run removes (the server dies with it through --pdeathsig).
#[test]
fn killed_managed_runs_leave_no_server_and_no_key_behind() {
    let profile = s2spec::target::profile::Profile::load(std::path::Path::new(
        "fixtures/targets/prosody.toml",
    ))
    .unwrap();
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED killed_managed_runs_leave_no_server_and_no_key_behind: {why}");
        return;
    }
    let dir = temp_dir("killed-managed");
    for signal in ["-TERM", "-KILL"] {
        let reports = dir.join(&signal[1..]);
        let child = Command::new(BIN)
            .args(["run", "--target", "prosody", "--jobs", "1", "--report-dir"])
            .arg(&reports)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s2spec");
        let mut guard = Guard(child);
        let pid = guard.0.id();
        wait_until("a prosody instance", Duration::from_secs(60), || {
            instance_dirs(pid)
                .iter()
                .any(|d| d.join("target.key").exists())
                && !children(pid).is_empty()
        });
        let servers = children(pid);
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = guard.0.wait().unwrap().code();
        for server in &servers {
            wait_until("the server to end", Duration::from_secs(10), || {
                !Path::new(&format!("/proc/{server}")).exists()
            });
        }
        if signal == "-TERM" {
            assert_eq!(code, Some(2));
            assert!(instance_dirs(pid).is_empty(), "{:?}", instance_dirs(pid));
            let report = read_json(&reports.join("report.json")).unwrap();
            assert!(report.run.interrupted);
        } else {
            // SIGKILL leaves the directory; any later run (also one of a
            // parallel test) may already have removed it, which is the point.

            let next = run(&[
                "run",
                "--target",
                "prosody",
                "--filter",
                "matrix/in/t-RR1/p-RR1/valid/srv",
                "--report-dir",
                dir.join("next").to_str().unwrap(),
            ]);
            assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
            assert!(instance_dirs(pid).is_empty(), "the next run removed it");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
