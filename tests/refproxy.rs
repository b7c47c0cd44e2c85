//! The reference proxy over real loopback sockets (SPEC §4.1, §4.2, §7, §8):
//! features per partner configuration, SASL EXTERNAL, TCP dialback with an
//! echo over the proxy's own outbound stream, STARTTLS stripping outbound,
//! partner types and stream-header checks. Small hand-written peers live in
//! `support`.

mod support;

use s2spec::dialback::NS as NS_DB;
use s2spec::partner::Method;
use s2spec::pki::CertVariant;
use s2spec::refproxy::{Faults, ProxyEvent};
use s2spec::sasl;
use s2spec::xml::NS_SERVER;
use support::*;

fn mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `body` on its own runtime with the test deadline.
fn run<F: Future<Output = ()>>(body: F) {
    mt().block_on(bounded(body));
}

// ---------------------------------------------------------------------------
// 1. Features per configuration

#[test]
fn features_before_and_after_tls_follow_the_configuration() {
    run(async {
        // (code, STARTTLS before TLS, dialback before TLS,
        //  EXTERNAL after TLS with a matching certificate, dialback after TLS)
        let rows = [
            ("RR0", Some(true), false, true, false),
            ("RR1", Some(true), false, true, false),
            ("RO1", Some(true), false, true, true),
            ("RN1", Some(true), false, false, true),
            ("OR0", Some(false), false, true, false),
            ("OO1", Some(false), true, true, true),
            ("ON1", Some(false), true, false, true),
            ("NN1", None, true, false, false),
        ];
        let domain = |code: &str| format!("feat-{}.test", code.to_ascii_lowercase());
        let dns = dns().await;
        let partners: Vec<String> = rows
            .iter()
            .map(|r| partner(&domain(r.0), "federated", r.0, ""))
            .collect();
        let proxy = proxy(&dns, &partners, Faults::none()).await;
        for (code, starttls, db_clear, external, db_tls) in rows {
            let d = domain(code);
            let mut i = Initiator::connect(&proxy, &d).await;
            let pre = i.open().await;
            assert_eq!(pre.starttls, starttls, "{code}: STARTTLS before TLS");
            assert_eq!(pre.dialback, db_clear, "{code}: dialback before TLS");
            assert!(
                pre.mechanisms.is_empty(),
                "{code}: SASL before TLS: {pre:?}"
            );
            if starttls.is_none() {
                continue;
            }
            let post = i.starttls(leaf(&d, CertVariant::Valid).as_deref()).await;
            assert_eq!(post.starttls, None, "{code}: STARTTLS again after TLS");
            let want: Vec<String> = if external {
                vec![sasl::EXTERNAL.into()]
            } else {
                vec![]
            };
            assert_eq!(post.mechanisms, want, "{code}: mechanisms after TLS");
            assert_eq!(post.dialback, db_tls, "{code}: dialback after TLS");
            // A certificate for another name, or none: never EXTERNAL.
            for cert in [leaf(&d, CertVariant::WrongName), None] {
                let mut i = Initiator::connect(&proxy, &d).await;
                i.open().await;
                let post = i.starttls(cert.as_deref()).await;
                assert!(post.mechanisms.is_empty(), "{code}: {post:?}");
                assert_eq!(post.dialback, db_tls, "{code}: dialback after TLS");
            }
        }
        proxy.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// 2. SASL EXTERNAL

#[test]
fn sasl_external_succeeds_with_a_matching_certificate_and_echo_leaves_over_sasl() {
    run(async {
        let d = "sasl-ok.test";
        let dns = dns().await;
        let proxy = proxy(&dns, &[partner(d, "federated", "RR0", "")], Faults::none()).await;
        let mut peer = PeerServer::start(&dns, d, Profile::ALL, None).await;
        let cert = leaf(d, CertVariant::Valid);
        for (n, authzid) in [None, Some(d)].into_iter().enumerate() {
            let mut i = Initiator::connect(&proxy, d).await;
            i.open().await;
            let f = i.starttls(cert.as_deref()).await;
            assert!(f.offers_external());
            let answer = i.external(authzid).await;
            assert!(sasl::is_success(&answer), "{authzid:?}: {answer:?}");
            i.s.restart().unwrap();
            let f = i.open().await;
            assert_eq!(f, Default::default(), "nothing more to negotiate");
            let body = format!("sasl{n}");
            i.send(&message("carol@sasl-ok.test/r", "alice@target.test", &body))
                .await;
            let echo = peer
                .wait(|e| e.name == "message" && e.child(NS_SERVER, "body").is_some())
                .await;
            assert!(echo.tls, "the echo travels over TLS");
            assert_eq!(echo.element.attr("from"), Some("alice@target.test"));
            assert_eq!(echo.element.attr("to"), Some("carol@sasl-ok.test/r"));
            assert_eq!(echo.element.child(NS_SERVER, "body").unwrap().text(), body);
        }
        let events = proxy.events();
        assert!(events.contains(&ProxyEvent::InboundAuthenticated {
            remote: d.into(),
            method: Method::SaslOverTls
        }));
        assert!(events.contains(&ProxyEvent::OutboundAuthenticated {
            remote: d.into(),
            method: Method::SaslOverTls
        }));
        assert_eq!(delivered(&proxy).len(), 2);
        proxy.shutdown().await;
    });
}

#[test]
fn sasl_external_fails_with_a_wrong_name_certificate_or_a_foreign_authzid() {
    run(async {
        let d = "sasl-bad.test";
        let dns = dns().await;
        let partners = [
            partner(d, "federated", "OO0", ""),
            partner("sasl-other.test", "federated", "OO0", ""),
        ];
        let proxy = proxy(&dns, &partners, Faults::none()).await;

        // Wrong-name certificate: not offered, and refused if tried.
        let mut i = Initiator::connect(&proxy, d).await;
        i.open().await;
        let f = i.starttls(leaf(d, CertVariant::WrongName).as_deref()).await;
        assert!(f.mechanisms.is_empty(), "{f:?}");
        let answer = i.external(None).await;
        assert!(answer.is(s2spec::xml::NS_SASL, "failure"), "{answer:?}");
        // Still unauthenticated.
        i.send(&message("carol@sasl-bad.test", "alice@target.test", "x"))
            .await;
        assert_eq!(i.stream_error().await.as_deref(), Some("not-authorized"));

        // Valid certificate, but another domain as authorization identity.
        let mut i = Initiator::connect(&proxy, d).await;
        i.open().await;
        let f = i.starttls(leaf(d, CertVariant::Valid).as_deref()).await;
        assert!(f.offers_external());
        let answer = i.external(Some("sasl-other.test")).await;
        assert_eq!(
            sasl::failure_condition(&answer).as_deref(),
            Some("invalid-authzid")
        );
        assert!(delivered(&proxy).is_empty());
        assert!(
            !proxy
                .events()
                .iter()
                .any(|e| matches!(e, ProxyEvent::InboundAuthenticated { .. }))
        );
        proxy.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// 3 and 5. TCP dialback, delivery and the echo round trip

#[test]
fn tcp_dialback_is_verified_with_the_authoritative_server_and_the_message_is_echoed() {
    run(async {
        let d = "db-ok.test";
        let dns = dns().await;
        let proxy = proxy(&dns, &[partner(d, "federated", "NN1", "")], Faults::none()).await;
        let mut peer = PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
        let mut i = Initiator::connect(&proxy, d).await;
        i.dialback_ok().await;
        // The proxy asked the authoritative server (found through DNS).
        let verify = peer.wait(|e| e.is(NS_DB, "verify")).await;
        assert_eq!(verify.element.attr("from"), Some("target.test"));
        assert_eq!(verify.element.attr("to"), Some(d));
        assert_eq!(verify.element.attr("id"), Some(i.id.as_str()));
        assert_eq!(
            verify.element.text(),
            peer_secret().key("target.test", d, &i.id)
        );

        i.send(&message(
            "bob@db-ok.test/home",
            "alice@target.test",
            "hello",
        ))
        .await;
        // The echo comes over the proxy's own outbound stream, authenticated
        // by dialback (the peer verified the proxy's key with the proxy).
        let result = peer.wait(|e| e.is(NS_DB, "result")).await;
        assert_ne!(result.conn, verify.conn, "a separate outbound stream");
        assert!(!result.tls);
        let echo = peer.wait(|e| e.name == "message").await;
        assert_eq!(echo.conn, result.conn);
        assert_eq!(echo.element.attr("from"), Some("alice@target.test"));
        assert_eq!(echo.element.attr("to"), Some("bob@db-ok.test/home"));
        assert_eq!(echo.element.attr("id"), Some("m-hello"));
        assert_eq!(
            echo.element.child(NS_SERVER, "body").unwrap().text(),
            "hello"
        );

        // XEP-0199: a ping to the domain is answered over the same outbound stream.
        let ping = s2spec::xml::Element::new(NS_SERVER, "iq")
            .with_attr("from", "bob@db-ok.test/home")
            .with_attr("to", "target.test")
            .with_attr("type", "get")
            .with_attr("id", "ping-1")
            .with_child(s2spec::xml::Element::new("urn:xmpp:ping", "ping"));
        i.send(&ping).await;
        let pong = peer.wait(|e| e.name == "iq").await;
        assert_eq!(pong.conn, result.conn);
        assert_eq!(pong.element.attr("type"), Some("result"));
        assert_eq!(pong.element.attr("id"), Some("ping-1"));
        assert_eq!(pong.element.attr("to"), Some("bob@db-ok.test/home"));
        assert_eq!(pong.element.attr("from"), Some("target.test"));

        let events = proxy.events();
        assert!(events.contains(&ProxyEvent::InboundAuthenticated {
            remote: d.into(),
            method: Method::TcpDialback
        }));
        assert!(events.contains(&ProxyEvent::OutboundAuthenticated {
            remote: d.into(),
            method: Method::TcpDialback
        }));
        let got = delivered(&proxy);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(matches!(&got[0], ProxyEvent::Delivered { to, from, .. }
                if to == "alice@target.test" && from == "bob@db-ok.test/home"));
        proxy.shutdown().await;
    });
}

#[test]
fn dialback_is_refused_when_disabled_for_the_partner() {
    run(async {
        let d = "db-off.test";
        let dns = dns().await;
        let proxy = proxy(&dns, &[partner(d, "federated", "OO0", "")], Faults::none()).await;
        let mut peer = PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
        let mut i = Initiator::connect(&proxy, d).await;
        let f = i.open().await;
        assert!(!f.dialback);
        let answer = i.db_result(None).await;
        assert_eq!(answer.ty.as_deref(), Some("error"), "{answer:?}");
        assert_eq!(answer.error.as_deref(), Some("policy-violation"));
        i.send(&message("bob@db-off.test", "alice@target.test", "no"))
            .await;
        assert_eq!(i.stream_error().await.as_deref(), Some("not-authorized"));
        assert!(delivered(&proxy).is_empty());
        assert!(proxy.events().iter().any(|e| matches!(e,
            ProxyEvent::InboundRefused { remote: Some(r), .. } if r == d)));
        let seen = peer.drain();
        assert!(
            seen.iter().all(|r| !r.element.is(NS_DB, "verify")),
            "the authoritative server was contacted: {seen:?}"
        );
        proxy.shutdown().await;
    });
}

#[test]
fn tls_dialback_works_both_ways_and_its_key_never_travels_in_clear_text() {
    run(async {
        let (d, clear) = ("tlsdb.test", "tlsdb-clear.test");
        let dns = dns().await;
        let partners = [
            partner(d, "federated", "RN1", ""),
            partner(clear, "federated", "RN1", ""),
        ];
        let proxy = proxy(&dns, &partners, Faults::none()).await;
        let mut peer = PeerServer::start(&dns, d, Profile::TLS_DIALBACK, Some(proxy.addr())).await;
        let mut i = Initiator::connect(&proxy, d).await;
        i.open().await;
        let f = i.starttls(leaf(d, CertVariant::Valid).as_deref()).await;
        assert!(f.dialback && f.mechanisms.is_empty(), "{f:?}");
        let answer = i.db_result(None).await;
        assert_eq!(answer.ty.as_deref(), Some("valid"), "{answer:?}");
        let verify = peer.wait(|e| e.is(NS_DB, "verify")).await;
        assert!(verify.tls, "db:verify went out in clear text");
        i.send(&message("bob@tlsdb.test", "alice@target.test", "tls"))
            .await;
        let result = peer.wait(|e| e.is(NS_DB, "result")).await;
        assert!(result.tls, "outbound dialback in clear text");
        let echo = peer.wait(|e| e.name == "message").await;
        assert!(echo.tls);
        let events = proxy.events();
        assert!(events.contains(&ProxyEvent::InboundAuthenticated {
            remote: d.into(),
            method: Method::TlsDialback
        }));
        assert!(events.contains(&ProxyEvent::OutboundAuthenticated {
            remote: d.into(),
            method: Method::TlsDialback
        }));

        // The authoritative server of a TLS-required partner offers no
        // STARTTLS: the proxy must not send it the key in clear text.
        let mut peer =
            PeerServer::start(&dns, clear, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
        let mut i = Initiator::connect(&proxy, clear).await;
        i.open().await;
        i.starttls(leaf(clear, CertVariant::Valid).as_deref()).await;
        let answer = i.db_result(None).await;
        assert_eq!(answer.ty.as_deref(), Some("error"), "{answer:?}");
        peer.wait(|e| e.is(NS_TEST, "closed")).await;
        assert_eq!(peer.received_content(), Vec::<String>::new());
        proxy.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// 4. STARTTLS stripping, outbound

#[test]
fn nothing_leaves_in_clear_text_when_tls_is_required_but_not_offered() {
    run(async {
        let d = "strip.test";
        let dns = dns().await;
        let proxy = proxy(&dns, &[partner(d, "federated", "RN1", "")], Faults::none()).await;
        let mut peer = PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
        let mut events = proxy.subscribe();
        proxy.send_from_local(message("alice@target.test", "bob@strip.test", "secret"));
        let bounced = wait_event(&proxy, &mut events, |e| {
            matches!(e, ProxyEvent::Bounced { .. })
        })
        .await;
        let ProxyEvent::Bounced { to, stanza, .. } = bounced else {
            unreachable!()
        };
        assert_eq!(to, "alice@target.test");
        assert!(stanza.contains("remote-server-not-found"), "{stanza}");
        // The proxy closed its stream: the peer's record is complete.
        let closed = peer.wait(|e| e.is(NS_TEST, "closed")).await;
        assert!(!closed.tls);
        assert_eq!(peer.received_content(), Vec::<String>::new());
        assert!(
            peer.transcript
                .entries()
                .iter()
                .any(|e| e.text.contains("<stream:stream")),
            "the stream header did arrive"
        );
        proxy.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// 7. Partner types (SPEC §7)

#[test]
fn partner_types_govern_subscriptions_messages_and_status() {
    run(async {
        let dns = dns().await;
        let partners = [
            partner("pt-fed.test", "federated", "NN1", ""),
            partner("pt-pv.test", "public-verified", "NN1", ""),
            partner("pt-pu.test", "public-unverified", "NN1", ""),
        ];
        let proxy = proxy(&dns, &partners, Faults::none()).await;
        for (d, status) in [("pt-fed.test", true), ("pt-pv.test", false)] {
            let mut peer =
                PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
            let mut i = Initiator::connect(&proxy, d).await;
            i.dialback_ok().await;
            let carol = format!("carol@{d}");
            i.send(&presence(&carol, "alice@target.test", "subscribe"))
                .await;
            let yes = peer
                .wait(|e| e.name == "presence" && e.attr("type") == Some("subscribed"))
                .await;
            assert_eq!(yes.element.attr("from"), Some("alice@target.test"));
            assert_eq!(yes.element.attr("to"), Some(carol.as_str()));
            let available = peer
                .wait(|e| e.name == "presence" && e.attr("type").is_none())
                .await;
            assert_eq!(
                available.element.child(NS_SERVER, "status").is_some(),
                status,
                "{d}: status note"
            );
            // Presence a local user sends carries a status note only to federated partners.
            let with_status = presence("alice@target.test", &carol, "")
                .with_child(s2spec::xml::Element::new(NS_SERVER, "status").with_text("busy"));
            let mut with_status = with_status;
            with_status.attrs.retain(|(k, _)| k != "type");
            proxy.send_from_local(with_status);
            let sent = peer
                .wait(|e| e.name == "presence" && e.attr("type").is_none())
                .await;
            assert_eq!(sent.element.child(NS_SERVER, "status").is_some(), status);
            i.send(&message(&carol, "alice@target.test", "hi")).await;
            peer.wait(|e| e.name == "message" && e.attr("type") == Some("chat"))
                .await;
        }

        // public-unverified: refused until the local user subscribes first.
        let d = "pt-pu.test";
        let mut peer = PeerServer::start(&dns, d, Profile::DIALBACK_ONLY, Some(proxy.addr())).await;
        let mut i = Initiator::connect(&proxy, d).await;
        i.dialback_ok().await;
        i.send(&presence(
            "dave@pt-pu.test",
            "alice@target.test",
            "subscribe",
        ))
        .await;
        let no = peer.wait(|e| e.name == "presence").await;
        assert_eq!(no.element.attr("type"), Some("unsubscribed"));
        assert_eq!(no.element.attr("to"), Some("dave@pt-pu.test"));
        i.send(&message("dave@pt-pu.test", "alice@target.test", "spam"))
            .await;
        let err = peer.wait(|e| e.name == "message").await;
        assert_eq!(err.element.attr("type"), Some("error"), "{err:?}");
        let refused: Vec<_> = proxy
            .events()
            .into_iter()
            .filter(
                |e| matches!(e, ProxyEvent::NotDelivered { from, .. } if from.starts_with("dave@")),
            )
            .collect();
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(!delivered(&proxy).iter().any(|e| matches!(e,
            ProxyEvent::Delivered { from, .. } if from.starts_with("dave@"))));

        // alice adds dave: the request goes out, and dave is now authorised.
        proxy.send_from_local(presence(
            "alice@target.test",
            "dave@pt-pu.test",
            "subscribe",
        ));
        let req = peer
            .wait(|e| e.name == "presence" && e.attr("type") == Some("subscribe"))
            .await;
        assert_eq!(req.element.attr("from"), Some("alice@target.test"));
        i.send(&presence(
            "dave@pt-pu.test",
            "alice@target.test",
            "subscribe",
        ))
        .await;
        peer.wait(|e| e.name == "presence" && e.attr("type") == Some("subscribed"))
            .await;
        let available = peer
            .wait(|e| e.name == "presence" && e.attr("type").is_none())
            .await;
        assert!(available.element.child(NS_SERVER, "status").is_none());
        i.send(&message("dave@pt-pu.test", "alice@target.test", "hello"))
            .await;
        let echo = peer.wait(|e| e.name == "message").await;
        assert_eq!(echo.element.attr("type"), Some("chat"));
        assert!(delivered(&proxy).iter().any(|e| matches!(e,
            ProxyEvent::Delivered { from, stanza, .. } if from == "dave@pt-pu.test" && stanza.contains("hello"))));
        proxy.shutdown().await;
    });
}

// ---------------------------------------------------------------------------
// 8. Stream header and addressing checks

#[test]
fn stream_headers_and_addressing_are_checked() {
    run(async {
        let dns = dns().await;
        let partners = [
            partner("hdr.test", "federated", "NN1", ""),
            partner("hdr-lim.test", "federated", "NN1", "connection-limit = 1"),
        ];
        let proxy = proxy(&dns, &partners, Faults::none()).await;
        let _peer =
            PeerServer::start(&dns, "hdr.test", Profile::DIALBACK_ONLY, Some(proxy.addr())).await;

        // `to` is not served here.
        let mut i = Initiator::connect_to(&proxy, "hdr.test", "elsewhere.test").await;
        i.send_header().await;
        assert_eq!(i.stream_error().await.as_deref(), Some("host-unknown"));

        // `from` is not a partner.
        let mut i = Initiator::connect(&proxy, "stranger.test").await;
        i.send_header().await;
        assert_eq!(i.stream_error().await.as_deref(), Some("policy-violation"));
        assert!(proxy.events().iter().any(|e| matches!(e,
            ProxyEvent::InboundRefused { remote: Some(r), .. } if r == "stranger.test")));

        // A stanza before authentication.
        let mut i = Initiator::connect(&proxy, "hdr.test").await;
        i.open().await;
        i.send(&message("bob@hdr.test", "alice@target.test", "early"))
            .await;
        assert_eq!(i.stream_error().await.as_deref(), Some("not-authorized"));

        // Missing `to`, then missing `from`.
        for missing in ["to", "from"] {
            let mut i = Initiator::connect(&proxy, "hdr.test").await;
            i.dialback_ok().await;
            let mut m = message("bob@hdr.test", "alice@target.test", "noaddr");
            m.attrs.retain(|(k, _)| k != missing);
            i.send(&m).await;
            assert_eq!(
                i.stream_error().await.as_deref(),
                Some("improper-addressing"),
                "missing {missing}"
            );
        }
        assert!(delivered(&proxy).is_empty());

        // Connection limit of one.
        let mut first = Initiator::connect(&proxy, "hdr-lim.test").await;
        first.open().await;
        let mut second = Initiator::connect(&proxy, "hdr-lim.test").await;
        second.send_header().await;
        assert_eq!(
            second.stream_error().await.as_deref(),
            Some("policy-violation")
        );
        proxy.shutdown().await;
    });
}

#[test]
fn the_global_connection_limit_answers_resource_constraint() {
    run(async {
        let dns = dns().await;
        let partners = [partner("glob.test", "federated", "NN1", "")];
        let proxy = proxy_with(&dns, &partners, Faults::none(), 1).await;
        let mut first = Initiator::connect(&proxy, "glob.test").await;
        first.open().await;
        let mut second = Initiator::connect(&proxy, "glob.test").await;
        second.send_header().await;
        assert_eq!(
            second.stream_error().await.as_deref(),
            Some("resource-constraint")
        );
        proxy.shutdown().await;
    });
}
