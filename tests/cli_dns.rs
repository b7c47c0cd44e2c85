//! `s2spec dns` as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;

use s2spec::dns::{ResolveError, Service, XmppResolver};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/dns/example-zone.toml"
);

mod child;
use child::{Guard, run, spawn_listening};

/// Starts `s2spec dns` on a free port with `zone`.
fn spawn_dns(zone: &str) -> (Guard, SocketAddr) {
    spawn_listening(&["dns", "--zone", zone, "--listen", "127.0.0.1:0"])
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_dns-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn serves_the_example_zone_file() {
    let (_guard, addr) = spawn_dns(EXAMPLE);
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    let r = XmppResolver::new(addr).unwrap();

    let c = r.resolve_s2s("fabrikam.test").await.unwrap();
    let got: Vec<(&str, u16, bool)> = c
        .iter()
        .map(|c| (c.host.as_str(), c.port, c.direct_tls))
        .collect();
    assert_eq!(
        got,
        [
            ("xmpp.fabrikam.test", 5270, true),
            ("xmpp.fabrikam.test", 5269, false),
            ("backup.fabrikam.test", 15269, false),
        ]
    );
    let srv = r
        .lookup_srv(Service::XmppServer, "fabrikam.test")
        .await
        .unwrap();
    assert_eq!(srv.len(), 2);
    assert_eq!(
        r.lookup_ip("contoso.test").await,
        Ok(vec!["127.0.0.2".parse().unwrap()])
    );
    assert_eq!(
        r.resolve_s2s("nope.test").await,
        Err(ResolveError::ServiceUnavailable("nope.test".into()))
    );
}

#[test]
fn bad_zone_file_exits_2_with_the_line() {
    let path = temp_file(
        "bad.toml",
        "[[zone]]\norigin = \"a.test\"\n[[zone.a]]\nname = \"a.test\"\naddress = \"not-an-ip\"\n",
    );
    let shown = path.display().to_string();
    let out = run(&["dns", "--zone", &shown, "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{shown}:5: ")), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn unknown_key_exits_2_with_the_line() {
    let path = temp_file(
        "key.toml",
        "[[zone]]\norigin = \"a.test\"\nttl = 5\ncolour = 1\n",
    );
    let shown = path.display().to_string();
    let out = run(&["dns", "--zone", &shown, "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{shown}:4: ")), "{stderr}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn missing_file_non_loopback_and_busy_port_exit_2() {
    let out = run(&[
        "dns",
        "--zone",
        "/nonexistent/zone.toml",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/zone.toml"));

    let out = run(&["dns", "--zone", EXAMPLE, "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));

    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run(&["dns", "--zone", EXAMPLE, "--listen", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&addr), "names the address: {stderr}");
}
