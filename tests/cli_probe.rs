//! `s2spec probe` as a child process against `s2spec serve` (and `s2spec
//! dns` for our domain's records): the JSON of docs/probe.md, and exit 2
//! with a message naming the flag at fault.

use std::path::{Path, PathBuf};

mod child;
use child::{run, spawn_listening};

fn certs_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_probe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = run(&[
        "certs",
        "--out",
        dir.to_str().unwrap(),
        "--domain",
        "target.test",
        "--domain",
        "ours.test",
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn probe_of_s2spec_serve_gives_the_documented_json() {
    let dir = certs_dir("serve");
    let listen = free_port();
    let zone = write(
        &dir,
        "zone.toml",
        &format!(
            "[[zone]]\norigin = \"ours.test\"\n\n[[zone.srv]]\nservice = \"xmpp-server\"\n\
             priority = 10\nweight = 5\nport = {listen}\ntarget = \"xmpp.ours.test\"\n\n\
             [[zone.a]]\nname = \"xmpp.ours.test\"\naddress = \"127.0.0.1\"\n"
        ),
    );
    // The probed server admits TLS dialback only (row RN1) for ours.test.
    let partners = write(
        &dir,
        "partners.toml",
        "[local]\ndomains = [\"target.test\"]\nusers = [\"alice\"]\n\n[[partner]]\n\
         domain = \"ours.test\"\ntype = \"federated\"\ntls = \"required\"\n\
         sasl = \"not-supported\"\ndialback = true\n",
    );
    let (_dns, dns) = spawn_listening(&["dns", "--zone", &zone, "--listen", "127.0.0.1:0"]);
    let dns = dns.to_string();
    let certs = dir.to_str().unwrap();
    let (_serve, server) = spawn_listening(&[
        "serve",
        "--partners",
        &partners,
        "--listen",
        "127.0.0.1:0",
        "--dns",
        &dns,
        "--certs",
        certs,
    ]);
    let listen = format!("127.0.0.1:{listen}");
    let out = run(&[
        "probe",
        "target.test",
        "--connect",
        &server.to_string(),
        "--from",
        "ours.test",
        "--listen",
        &listen,
        "--certs",
        certs,
        "--dns",
        &dns,
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["domain"], "target.test");
    assert_eq!(doc["observed"]["starttls"], "required");
    assert_eq!(doc["observed"]["external"]["offered"], false);
    assert_eq!(doc["observed"]["dialback_tls"]["accepted"], true);
    assert_eq!(doc["inferred"]["receiving"], serde_json::json!(["RN1"]));
    let configs = doc["configurations"].as_array().unwrap();
    assert_eq!(configs.len(), 11);
    let get = |code: &str| {
        configs
            .iter()
            .find(|c| c["config"] == code)
            .unwrap_or_else(|| panic!("{code} missing"))
            .clone()
    };
    for c in configs {
        assert!(c["why"].as_str().is_some_and(|w| !w.is_empty()), "{c}");
    }
    assert_eq!(get("ON1")["inbound"], "tls-dialback");
    assert_eq!(get("ON1")["outbound"], "tls-dialback");
    assert_eq!(get("RR0")["outbound"], "refused");
    assert_eq!(get("NN1")["inbound"], "refused");
    assert_eq!(doc["recommended"], "RN1");
    assert!(
        doc["powershell"]
            .as_str()
            .unwrap()
            .contains("-TlsNegotiation Required -SaslNegotiation NotSupported")
    );
    // No note about our records: they do point at --listen.
    let notes = doc["observed"]["notes"].as_array().unwrap();
    assert!(
        notes.iter().all(|n| !n.as_str().unwrap().contains("--dns")),
        "{notes:?}"
    );
}

#[test]
fn trouble_exits_2_naming_the_flag() {
    let dir = certs_dir("trouble");
    let certs = dir.to_str().unwrap();
    let missing = dir.join("missing");
    let listen = format!("127.0.0.1:{}", free_port());
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--certs",
                missing.to_str().unwrap(),
                "--connect",
                "127.0.0.1:1",
            ],
            "--certs",
        ),
        (&["--certs", certs, "--connect", "127.0.0.1:1"], "--connect"),
        (
            &["--certs", certs, "--connect", "192.0.2.1:5269"],
            "loopback",
        ),
        (
            &[
                "--certs",
                certs,
                "--connect",
                "127.0.0.1:1",
                "--listen",
                "127.0.0.1:0",
            ],
            "--listen 127.0.0.1:0: needs a fixed port",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["probe", "target.test", "--from", "ours.test"];
        args.extend_from_slice(extra);
        if !extra.contains(&"--listen") {
            args.extend_from_slice(&["--listen", &listen]);
        }
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
