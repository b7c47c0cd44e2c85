//! `s2spec run` and `s2spec list` through the binary: reports, exit codes, and
//! an external target (the reference proxy in its own process via `serve`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use s2spec::report::{Partition, Transcripts, Verdict, read_json};

mod child;
use child::{BIN, Guard, run, spawn_listening};

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_filtered_run_writes_both_reports_and_exits_0() {
    let dir = temp_dir("ok");
    let out = run(&[
        "run",
        "--filter",
        "matrix/out/t-RO1/p-OR",
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_json(&dir.join("report.json")).unwrap();
    assert_eq!(report.summary.total, 2);
    assert!(report.cases.iter().all(|c| c.verdict == Verdict::Pass));
    // By default passing cases keep no transcript in the file.
    assert_eq!(report.run.transcripts, Some(Transcripts::Failing));
    assert!(report.cases.iter().all(|c| c.transcript.is_empty()));
    let selection = report.run.selection.as_ref().unwrap();
    assert_eq!(selection.filter, ["matrix/out/t-RO1/p-OR"]);
    assert_eq!(selection.partition, None);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Transcript omitted (--transcripts failing)."));
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("matrix/out/t-RO1/p-OR1/valid/srv"));
    assert!(stdout.contains("total"), "{stdout}");

    let out = run(&[
        "run",
        "--filter",
        "matrix/out/t-RO1/p-OR",
        "--transcripts",
        "all",
        "--partition",
        "2/2",
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report = read_json(&dir.join("report.json")).unwrap();
    assert_eq!(report.summary.total, 1);
    assert!(
        report.cases.iter().all(|c| !c.transcript.is_empty()),
        "transcripts recorded"
    );
    let partition = report.run.selection.and_then(|s| s.partition);
    assert_eq!(partition, Some(Partition { k: 2, n: 2 }));
}

#[test]
fn a_faulty_reference_target_fails_the_run_with_exit_1() {
    let dir = temp_dir("fault");
    let out = run(&[
        "run",
        "--filter",
        "matrix/in/t-RN1/p-ON1/valid/srv",
        "--reference-fault",
        "tls-required-not-advertised",
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = read_json(&dir.join("report.json")).unwrap();
    assert_eq!(report.run.faults, ["tls-required-not-advertised"]);
    assert_eq!(report.cases[0].verdict, Verdict::Fail);
    assert!(report.cases[0].messages[0].contains("<required/>"));
}

#[test]
fn bad_selections_and_flags_exit_2() {
    let out = run(&["run", "--filter", "no/such/case"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no case matches"));
    let out = run(&["run", "--partition", "3/2"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["run", "--target", "external"]);
    assert_eq!(out.status.code(), Some(2), "external needs an address");
}

/// SPEC §4.3: a target that answers no stream header at all stops the run
/// with exit 2 instead of being graded as refusing everything.
#[test]
fn a_silent_external_target_stops_the_run_with_exit_2() {
    let dir = temp_dir("silent-external");
    let certs = dir.join("certs");
    let out = run(&[
        "certs",
        "--out",
        certs.to_str().unwrap(),
        "--domain",
        "target.test",
        "--variant",
        "valid",
    ]);
    assert!(out.status.success());
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for tcp in listener.incoming().take(4).flatten() {
            held.push(tcp);
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    let out = run(&[
        "run",
        "--target",
        "external",
        "--target-addr",
        &addr,
        "--certs",
        certs.to_str().unwrap(),
        "--dns-listen",
        "127.0.0.1:0",
        "--no-wait",
        "--report-dir",
        dir.join("reports").to_str().unwrap(),
        "--filter",
        "matrix/in/t-OO1/p-OO1/valid/srv",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not answer"), "{stderr}");
    assert!(!dir.join("reports/report.json").exists());
    drop(holder);
}

#[test]
fn list_prints_ids_with_descriptions() {
    let out = run(&["list", "--filter", "config/"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        ids,
        [
            "config/NR1",
            "config/NR0",
            "config/NO1",
            "config/NO0",
            "config/RN0",
            "config/ON0",
            "config/NN0"
        ]
    );
    assert!(text.contains("the target must refuse"));
}

#[test]
fn an_external_target_is_tested_through_its_address() {
    let dir = temp_dir("external");
    let certs = dir.join("certs");
    let reports = dir.join("reports");
    let out = run(&[
        "certs",
        "--out",
        certs.to_str().unwrap(),
        "--domain",
        "target.test",
        "--variant",
        "valid",
    ]);
    assert!(out.status.success());
    // A free port for the target, chosen before it starts.
    let target_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target_addr = format!("127.0.0.1:{target_port}");
    let mut runner = Command::new(BIN)
        .args([
            "run",
            "--target",
            "external",
            "--target-addr",
            &target_addr,
            "--certs",
            certs.to_str().unwrap(),
            "--dns-listen",
            "127.0.0.1:0",
            "--report-dir",
            reports.to_str().unwrap(),
            "--filter",
            "matrix/in/t-OO1/p-OO1/valid/srv",
            "--filter",
            "matrix/out/t-OO1/p-OO1/valid/srv",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = runner.stdin.take().unwrap();
    let stderr = BufReader::new(runner.stderr.take().unwrap());
    let runner = Guard(runner);
    // Read the instructions for the DNS address, up to the prompt.
    let mut dns = String::new();
    for line in stderr.lines().map_while(Result::ok) {
        if let Some(rest) = line.split("DNS server at ").nth(1) {
            dns = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
        if line.starts_with("Press Enter") {
            break;
        }
    }
    assert!(!dns.is_empty(), "the instructions name the DNS server");
    let partners = reports.join("partners.toml");
    let (_serve, _) = spawn_listening(&[
        "serve",
        "--partners",
        partners.to_str().unwrap(),
        "--listen",
        &target_addr,
        "--dns",
        &dns,
        "--certs",
        certs.to_str().unwrap(),
    ]);
    stdin.write_all(b"\n").unwrap();
    drop(stdin);
    let mut runner = runner;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = runner.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "run did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let report = read_json(&reports.join("report.json")).unwrap();
    let verdict = |id: &str| report.cases.iter().find(|c| c.id == id).map(|c| c.verdict);
    assert_eq!(
        verdict("matrix/in/t-OO1/p-OO1/valid/srv"),
        Some(Verdict::Pass)
    );
    assert_eq!(
        verdict("matrix/out/t-OO1/p-OO1/valid/srv"),
        Some(Verdict::NotApplicable)
    );
}

#[test]
fn snapshots_catch_a_behaviour_change() {
    let dir = temp_dir("snapshots");
    let snaps = dir.join("snaps");
    let reports = dir.join("reports");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "run",
            "--filter",
            "matrix/in/t-OO1/p-OO1/",
            "--snapshots",
            snaps.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    let first = args(&[]);
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(
        std::fs::read_dir(&snaps).unwrap().count(),
        s2spec::pki::CertVariant::ALL.len(),
        "one snapshot per case (one per certificate variant)"
    );
    // Passing cases keep no transcript in report.json, but their snapshots
    // are taken from the full transcripts in memory.
    let snap =
        std::fs::read_to_string(snaps.join("matrix__in__t-OO1__p-OO1__valid__srv.snap")).unwrap();
    assert!(snap.contains("<starttls xmlns="), "{snap}");
    assert_eq!(args(&[]).status.code(), Some(0), "same behaviour, no drift");
    // A target that starts accepting invalid certificates behaves differently:
    // the snapshots say so, case by case.
    let drift = args(&["--reference-fault", "accept-invalid-cert"]);
    assert_eq!(drift.status.code(), Some(1));
    let err = String::from_utf8_lossy(&drift.stderr);
    assert!(
        err.contains("snapshot drift: matrix/in/t-OO1/p-OO1/expired/srv"),
        "{err}"
    );
}

/// Issue 17: a profile copied to another directory under another name runs
/// with `--target PATH`, is named after its file in the report and the
/// default report directory, and leaves no instance behind. Prosody only
/// when installed (SKIPPED otherwise).
#[test]
fn a_copied_profile_runs_by_its_path_under_its_own_name() {
    let shipped = std::path::Path::new("fixtures/targets");
    let profile = s2spec::target::profile::Profile::named(shipped, "prosody").unwrap();
    if let Some(why) = profile.unavailable() {
        eprintln!("SKIPPED a_copied_profile_runs_by_its_path_under_its_own_name: {why}");
        return;
    }
    let dir = temp_dir("copied-profile");
    let profiles = dir.join("elsewhere");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::copy(
        shipped.join("prosody.toml"),
        profiles.join("my-prosody.toml"),
    )
    .unwrap();
    std::fs::copy(
        shipped.join("prosody.cfg.lua.tmpl"),
        profiles.join("prosody.cfg.lua.tmpl"),
    )
    .unwrap();
    let path = profiles.join("my-prosody.toml");
    // `targets` lists it by its file name.
    let listed = run(&["targets", "--profiles", profiles.to_str().unwrap()]);
    assert_eq!(listed.status.code(), Some(0));
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("my-prosody ") && text.contains("installed: my-prosody 0."),
        "{text}"
    );
    let reports = dir.join("reports");
    let out = run(&[
        "run",
        "--target",
        path.to_str().unwrap(),
        "--filter",
        "matrix/in/t-RR1/p-RR1/valid/srv",
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let report = read_json(&reports.join("report.json")).unwrap();
    assert_eq!(report.run.target, "my-prosody");
    assert_eq!(report.cases.len(), 1);
    assert_eq!(
        report.cases[0].verdict,
        Verdict::Pass,
        "{:?}",
        report.cases[0].messages
    );
    let version = std::fs::read_to_string(reports.join("VERSION")).unwrap();
    assert!(version.starts_with("my-prosody "), "{version}");
    // Nothing of the instance is left: no directory named after the profile
    // (the run's own PID is gone; any `s2spec-my-prosody-` directory is ours).
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("s2spec-my-prosody-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // An unknown name says where it looked.
    let out = run(&[
        "run",
        "--target",
        "my-prosody",
        "--filter",
        "matrix/in/t-RR1/p-RR1/valid/srv",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no target profile `my-prosody`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `targets` lists the built-in targets and each profile; one that does not
/// load is named at its file and line, with the key (exit 2).
#[test]
fn targets_lists_profiles_and_names_a_broken_one_at_its_line() {
    let dir = temp_dir("targets");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::fs::read_to_string("fixtures/targets/test/two-listeners.toml").unwrap();
    std::fs::write(dir.join("good.toml"), &shipped).unwrap();
    let broken = shipped.replace(
        "program = \"python3\"",
        "program = \"python3\"\nprogramme = 1",
    );
    let line = 1 + broken
        .lines()
        .position(|l| l.starts_with("programme"))
        .unwrap();
    std::fs::write(dir.join("broken.toml"), broken).unwrap();
    let out = run(&["targets", "--profiles", dir.to_str().unwrap()]);
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{text}{err}");
    assert!(
        text.starts_with("reference ") && text.contains("\nexternal "),
        "{text}"
    );
    assert!(text.contains("\ngood "), "{text}");
    let at = format!("{}:{line}: ", dir.join("broken.toml").display());
    assert!(err.contains(&at) && err.contains("programme"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
