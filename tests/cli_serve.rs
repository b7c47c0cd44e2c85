//! `s2spec serve` as a child process: it refuses bad input with the right
//! exit code and, given certificates from `s2spec certs`, serves real streams.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use s2spec::features::Features;
use s2spec::stream::{Transcript, XmppStream};
use s2spec::xml::{Event, Limits, StreamHeader};

mod child;
use child::{run, spawn_listening};

const VALID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/partners/valid.toml");
const INVALID: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/partners/invalid.toml"
);
const SYNTAX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/partners/syntax-error.toml"
);

/// A fresh certificate directory holding the CA and the valid certificates of
/// the local domains of `valid.toml`.
fn certs_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = run(&[
        "certs",
        "--out",
        dir.to_str().unwrap(),
        "--domain",
        "target.test",
        "--domain",
        "chat.target.test",
        "--variant",
        "valid",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn stderr_of(args: &[&str]) -> (Option<i32>, String) {
    let out = run(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_partner_set_is_refused_with_its_diagnostics() {
    let dir = certs_dir("invalid");
    let certs = dir.to_str().unwrap();
    let (code, err) = stderr_of(&[
        "serve",
        "--partners",
        INVALID,
        "--listen",
        "127.0.0.1:0",
        "--dns",
        "127.0.0.1:53",
        "--certs",
        certs,
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(": E1: "), "{err}");
    assert!(err.contains("not starting"), "{err}");
}

#[test]
fn unreadable_input_and_bad_flags_exit_2() {
    let dir = certs_dir("bad");
    let certs = dir.to_str().unwrap();
    let base = ["serve", "--listen", "127.0.0.1:0", "--dns", "127.0.0.1:53"];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        stderr_of(&args)
    };
    let (code, err) = with(&["--partners", SYNTAX, "--certs", certs]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(": P1: "), "{err}");

    let (code, err) = with(&["--partners", VALID, "--certs", "/nonexistent/certs"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--certs /nonexistent/certs"), "{err}");

    let (code, err) = with(&["--partners", VALID, "--certs", certs, "--fault", "be-evil"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("route-before-auth"),
        "the known faults are listed: {err}"
    );

    let (code, err) = stderr_of(&[
        "serve",
        "--partners",
        VALID,
        "--listen",
        "192.0.2.1:5269",
        "--dns",
        "127.0.0.1:53",
        "--certs",
        certs,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("loopback"), "{err}");
}

#[tokio::test]
async fn serves_streams_and_stops_cleanly_on_sigterm() {
    let dir = certs_dir("run");
    let (mut guard, addr) = spawn_listening(&[
        "serve",
        "--partners",
        VALID,
        "--listen",
        "127.0.0.1:0",
        "--dns",
        "127.0.0.1:53",
        "--certs",
        dir.to_str().unwrap(),
    ]);
    let mut s = XmppStream::connect(addr, Limits::default(), Transcript::new(), 1)
        .await
        .unwrap();
    let header = StreamHeader::server()
        .with_from("fabrikam.test")
        .with_to("target.test");
    s.send_header(&header).await.unwrap();
    let step = Duration::from_secs(5);
    assert!(matches!(s.next(step).await, Ok(Event::Header(_))));
    let Ok(Event::Element(features)) = s.next(step).await else {
        panic!("features expected");
    };
    // fabrikam.test requires TLS: STARTTLS with <required/>, nothing else in clear.
    let features = Features::parse(&features).expect("stream features");
    assert_eq!(features.starttls, Some(true));
    assert!(features.mechanisms.is_empty());
    assert!(!features.dialback);

    let pid = guard.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
