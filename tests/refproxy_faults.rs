//! Each of the reference proxy's fault switches makes a real,
//! observable deviation: the same exchange is run against a correct proxy and
//! against one with the switch, and the outcomes differ in the named way.

mod support;

use std::net::SocketAddr;

use s2spec::dialback::NS as NS_DB;
use s2spec::pki::CertVariant;
use s2spec::refproxy::{Fault, Faults, ProxyEvent, RefProxy};
use s2spec::sasl;
use support::*;

fn run<F: Future<Output = ()>>(body: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bounded(body));
}

/// Both proxies of one comparison.
fn both(fault: Fault) -> [(bool, Faults); 2] {
    [(false, Faults::none()), (true, faults(&[fault]))]
}

#[test]
fn every_fault_switch_has_a_test_here() {
    let source = include_str!("refproxy_faults.rs");
    for f in Fault::ALL {
        let name = f.as_str().replace('-', "_");
        assert!(
            source.contains(&format!("fn fault_{name}()")),
            "no test for {f:?}"
        );
    }
}

fn events_has(proxy: &RefProxy, pred: impl Fn(&ProxyEvent) -> bool) -> bool {
    proxy.events().iter().any(pred)
}

#[test]
fn fault_accept_dialback_when_disabled() {
    run(async {
        for (faulty, f) in both(Fault::AcceptDialbackWhenDisabled) {
            let d = "f-adwd.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "OO0", "")], f).await;
            let _peer =
                PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.open().await;
            let answer = i.db_result(None).await;
            let want = if faulty { "valid" } else { "error" };
            assert_eq!(answer.ty.as_deref(), Some(want), "faulty={faulty}");
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_offer_external_before_tls() {
    run(async {
        for (faulty, f) in both(Fault::OfferExternalBeforeTls) {
            let d = "f-oebt.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "OO1", "")], f).await;
            let mut i = Initiator::connect(&proxy, d).await;
            let pre = i.open().await;
            assert_eq!(pre.offers_external(), faulty, "{pre:?}");
            let answer = i.external(None).await;
            assert_eq!(sasl::is_success(&answer), faulty, "{answer:?}");
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_skip_dialback_verify() {
    run(async {
        for (faulty, f) in both(Fault::SkipDialbackVerify) {
            let d = "f-sdv.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "NN1", "")], f).await;
            let mut peer = PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, None).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.open().await;
            // A key the authoritative server will call invalid.
            let answer = i.db_result(Some("00ff00ff")).await;
            let asked = peer.drain().iter().any(|r| r.element.is(NS_DB, "verify"));
            if faulty {
                assert_eq!(answer.ty.as_deref(), Some("valid"));
                assert!(!asked, "the authoritative server was contacted");
            } else {
                assert_eq!(answer.ty.as_deref(), Some("invalid"));
                assert!(asked, "the authoritative server was not contacted");
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_plaintext_outbound_when_tls_required() {
    run(async {
        for (faulty, f) in both(Fault::PlaintextOutboundWhenTlsRequired) {
            let d = "f-potr.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "RN1", "")], f).await;
            let mut peer =
                PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
            let mut events = proxy.subscribe();
            proxy.send_from_local(message("alice@target.test", "bob@f-potr.test", "secret"));
            if faulty {
                let m = peer.wait(|e| e.name == "message").await;
                assert!(!m.tls, "the stanza left in clear text");
                assert!(!events_has(&proxy, |e| matches!(
                    e,
                    ProxyEvent::Bounced { .. }
                )));
            } else {
                wait_event(&proxy, &mut events, |e| {
                    matches!(e, ProxyEvent::Bounced { .. })
                })
                .await;
                peer.wait(|e| e.is(NS_TEST, "closed")).await;
                assert_eq!(peer.received_content(), Vec::<String>::new());
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_accept_invalid_cert() {
    run(async {
        for (faulty, f) in both(Fault::AcceptInvalidCert) {
            let d = "f-aic.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "OO1", "")], f).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.open().await;
            let post = i.starttls(leaf(d, CertVariant::WrongName).as_deref()).await;
            assert_eq!(post.offers_external(), faulty, "{post:?}");
            let answer = i.external(None).await;
            assert_eq!(sasl::is_success(&answer), faulty, "{answer:?}");
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_process_pipelined_starttls() {
    run(async {
        for (faulty, f) in both(Fault::ProcessPipelinedStarttls) {
            let d = "f-pps.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "OO1", "")], f).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.open().await;
            // <starttls/> and a complete stream header in one write.
            let pipelined = format!(
                "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><?xml version='1.0'?>\
                 <stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' \
                 from='{d}' to='target.test' version='1.0'>"
            );
            i.s.send_raw(pipelined.as_bytes()).await.unwrap();
            let proceed = i.element().await;
            assert!(s2spec::starttls::is_proceed(&proceed), "{proceed:?}");
            i.handshake(leaf(d, CertVariant::Valid).as_deref()).await;
            // No header of ours on the TLS stream: only a replay can answer.
            match i.next_for(QUIET).await {
                Got::Header(_) => assert!(faulty, "the correct proxy answered a pipelined header"),
                Got::Timeout => assert!(!faulty, "the faulty proxy ignored the pipelined header"),
                other => panic!("faulty={faulty}: {other:?}"),
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_no_from_check() {
    run(async {
        for (faulty, f) in both(Fault::NoFromCheck) {
            let d = "f-nfc.test";
            let dns = dns().await;
            let partners = [
                partner(d, "federated", "NN1", ""),
                partner("f-nfc-other.test", "federated", "NN1", ""),
            ];
            let proxy = proxy(&dns, &partners, f).await;
            let _peer =
                PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.dialback_ok().await;
            let mut events = proxy.subscribe();
            i.send(&message(
                "mallory@f-nfc-other.test",
                "alice@target.test",
                "x",
            ))
            .await;
            if faulty {
                let e = wait_event(&proxy, &mut events, |e| {
                    matches!(e, ProxyEvent::Delivered { .. })
                })
                .await;
                assert!(
                    matches!(e, ProxyEvent::Delivered { from, .. } if from == "mallory@f-nfc-other.test")
                );
            } else {
                assert_eq!(i.stream_error().await.as_deref(), Some("invalid-from"));
                assert!(delivered(&proxy).is_empty());
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_ignore_partner_type() {
    run(async {
        for (faulty, f) in both(Fault::IgnorePartnerType) {
            let d = "f-ipt.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "public-unverified", "NN1", "")], f).await;
            let mut peer =
                PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.dialback_ok().await;
            i.send(&message("eve@f-ipt.test", "alice@target.test", "x"))
                .await;
            let answer = peer.wait(|e| e.name == "message").await;
            let want = if faulty { "chat" } else { "error" };
            assert_eq!(answer.element.attr("type"), Some(want));
            assert_eq!(delivered(&proxy).len(), faulty as usize);
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_route_before_auth() {
    run(async {
        for (faulty, f) in both(Fault::RouteBeforeAuth) {
            let d = "f-rba.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "NN1", "")], f).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.open().await;
            let mut events = proxy.subscribe();
            i.send(&message("bob@f-rba.test", "alice@target.test", "early"))
                .await;
            if faulty {
                wait_event(&proxy, &mut events, |e| {
                    matches!(e, ProxyEvent::Delivered { .. })
                })
                .await;
            } else {
                assert_eq!(i.stream_error().await.as_deref(), Some("not-authorized"));
                assert!(delivered(&proxy).is_empty());
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_ignore_required_tls_inbound() {
    run(async {
        for (faulty, f) in both(Fault::IgnoreRequiredTlsInbound) {
            let d = "f-irti.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "RN1", "")], f).await;
            let _peer = PeerServer::start(&dns, d, Profile::TLS_DIALBACK, Some(proxy.addr())).await;
            let mut i = Initiator::connect(&proxy, d).await;
            let pre = i.open().await;
            assert_eq!(pre.starttls, Some(true));
            let answer = i.db_result(None).await;
            let want = if faulty { "valid" } else { "error" };
            assert_eq!(answer.ty.as_deref(), Some(want), "{answer:?}");
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_accept_unknown_domain() {
    run(async {
        for (faulty, f) in both(Fault::AcceptUnknownDomain) {
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner("f-aud.test", "federated", "NN1", "")], f).await;
            let mut i = Initiator::connect(&proxy, "f-aud-stranger.test").await;
            i.send_header().await;
            if faulty {
                let features = i.read_features().await;
                assert!(features.dialback || features.starttls.is_some());
            } else {
                assert_eq!(i.stream_error().await.as_deref(), Some("policy-violation"));
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_tls_required_not_advertised() {
    run(async {
        for (faulty, f) in both(Fault::TlsRequiredNotAdvertised) {
            let d = "f-trna.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "RN1", "")], f).await;
            let mut i = Initiator::connect(&proxy, d).await;
            let pre = i.open().await;
            assert_eq!(pre.starttls, Some(!faulty), "{pre:?}");
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_echo_stream_version() {
    run(async {
        for (faulty, f) in both(Fault::EchoStreamVersion) {
            let d = "f-esv.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "OO1", "")], f).await;
            let mut i = Initiator::connect(&proxy, d).await;
            let mut h = s2spec::xml::StreamHeader::server()
                .with_from(d.to_string())
                .with_to(i.to.clone());
            h.version = Some("11.0".into());
            i.s.send_header(&h).await.expect("send header");
            match i.next().await {
                // RFC 6120 §4.7.5: the lower of 11.0 and 1.0.
                Got::Header(h) if !faulty => assert_eq!(h.version.as_deref(), Some("1.0")),
                Got::Header(h) => assert_eq!(h.version.as_deref(), Some("11.0")),
                other => panic!("expected a header, got {other:?}"),
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_refuse_server_auth_only() {
    run(async {
        for (faulty, f) in both(Fault::RefuseServerAuthOnly) {
            let d = "f-rsao.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "OO1", "")], f).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.open().await;
            i.s.send(&s2spec::starttls::starttls()).await.unwrap();
            assert!(s2spec::starttls::is_proceed(&i.element().await));
            let cert = leaf(d, CertVariant::ServerAuthOnly);
            let (config, _) = s2spec::tls::client_config(
                &trust(),
                cert.as_deref(),
                s2spec::tls::Transport::StartTls,
            )
            .unwrap();
            let name = s2spec::tls::server_name("target.test").unwrap();
            // TLS 1.3 tells the client of a refused certificate only after
            // its side of the handshake: the stream header then gets no answer.
            let answered = match i.s.starttls_client(config, name).await {
                Err(_) => false,
                Ok(_) => {
                    i.send_header().await;
                    matches!(i.next_for(QUIET * 3).await, Got::Header(_))
                }
            };
            assert_eq!(answered, !faulty, "faulty={faulty}");
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_ignore_srv_dot() {
    run(async {
        for (faulty, f) in both(Fault::IgnoreSrvDot) {
            let d = "f-isd.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "NN1", "")], f).await;
            // The A-record fallback (port 5269) leads to the peer; SRV says ".".
            // One address per pass: the first pass's listener goes away only
            // when its aborted task is dropped, which may be after this bind.
            let ip =
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 77, 41, 9 + u8::from(faulty)));
            let mut peer = PeerServer::start_on(
                &dns,
                d,
                Profile::DIALBACK_ONLY,
                Some(proxy.addr()),
                SocketAddr::new(ip, 5269),
            )
            .await;
            dns.upsert_zone(s2spec::dns::Zone::service_unavailable(d).with_address(d, ip))
                .unwrap();
            let mut events = proxy.subscribe();
            proxy.send_from_local(message("alice@target.test", "bob@f-isd.test", "dot"));
            if faulty {
                peer.wait(|e| e.name == "message").await;
            } else {
                wait_event(&proxy, &mut events, |e| {
                    matches!(e, ProxyEvent::Bounced { .. })
                })
                .await;
                assert_eq!(peer.received_content(), Vec::<String>::new());
            }
            proxy.shutdown().await;
        }
    });
}

#[test]
fn fault_ipv4_only() {
    run(async {
        for (faulty, f) in both(Fault::Ipv4Only) {
            let d = "f-v4o.test";
            let dns = dns().await;
            let proxy = proxy(&dns, &[partner(d, "federated", "NN1", "")], f).await;
            let v6 = SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 0);
            let mut peer =
                PeerServer::start_on(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr()), v6).await;
            let mut events = proxy.subscribe();
            proxy.send_from_local(message("alice@target.test", "bob@f-v4o.test", "six"));
            if faulty {
                wait_event(&proxy, &mut events, |e| {
                    matches!(e, ProxyEvent::Bounced { .. })
                })
                .await;
                assert_eq!(peer.received_content(), Vec::<String>::new());
            } else {
                peer.wait(|e| e.name == "message").await;
            }
            proxy.shutdown().await;
        }
    });
}
