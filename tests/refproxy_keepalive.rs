//! Whitespace keep-alives on idle outbound streams, only for partners with
//! `keep-alive = true` (SPEC §2; RFC 6120 §4.6.1), and the idle timeout.

mod support;

use std::time::Duration;

use s2spec::dns::Zone;
use s2spec::partner::Negotiation;
use s2spec::peer::{self, PeerEnv, PeerProfile, TargetInfo};
use s2spec::pki::CertVariant;
use s2spec::refproxy::Faults;
use s2spec::stream::{Dir, EntryKind, Transcript};
use support::*;

/// Whitespace the peer received from the proxy within `watch` after the
/// first stanza arrived on an outbound stream to a partner with `extra`.
async fn keepalives(domain: &str, extra: &str, watch: Duration) -> usize {
    let dns = dns().await;
    let mut t = timeouts();
    t.keepalive = Duration::from_millis(100);
    let partners = [partner(domain, "federated", "NN1", extra)];
    let proxy = proxy_timed(&dns, &partners, Faults::none(), 64, t).await;
    let transcript = Transcript::new();
    let env = PeerEnv::new(
        std::sync::Arc::new(s2spec::pki::Pki::new().unwrap()),
        transcript.clone(),
    )
    .unwrap();
    // The proxy trusts support::PKI, not this one: use TCP dialback (no TLS).
    let profile = PeerProfile::new(
        domain,
        Negotiation::from_code("NN1").unwrap(),
        CertVariant::Valid,
    );
    let target = TargetInfo {
        addr: proxy.addr(),
        domain: TARGET.into(),
    };
    let server = peer::PeerServer::start(env, profile, "127.0.0.1:0".parse().unwrap(), target)
        .await
        .unwrap();
    dns.upsert_zone(Zone::xmpp_peer(
        domain,
        "127.0.0.1".parse().unwrap(),
        server.addr().port(),
    ))
    .unwrap();
    proxy.send_from_local(message("alice@target.test", &format!("bob@{domain}"), "hi"));
    let got = server.wait_for_stanza(STEP, |s| s.name == "message").await;
    assert!(got.is_some(), "the message arrived");
    tokio::time::sleep(watch).await;
    let count = transcript
        .entries()
        .iter()
        .filter(|e| e.dir == Dir::Received && e.kind == EntryKind::Whitespace)
        .count();
    server.shutdown().await;
    proxy.shutdown().await;
    count
}

#[tokio::test]
async fn keep_alive_partners_get_whitespace_on_idle_streams() {
    bounded(async {
        let with = keepalives(
            "ka.keepalive.test",
            "keep-alive = true",
            Duration::from_millis(600),
        )
        .await;
        assert!(
            with >= 3,
            "{with} keep-alives in 600 ms at a 100 ms interval"
        );
        let without = keepalives("noka.keepalive.test", "", Duration::from_millis(600)).await;
        assert_eq!(without, 0, "no keep-alives without keep-alive = true");
    })
    .await;
}
