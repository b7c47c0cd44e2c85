//! Simulated peers against simulated peers over loopback: an initiating peer
//! of domain A connects to B's `PeerServer`; B verifies dialback keys against
//! A's own `PeerServer` (A's authoritative server). Plus targets that stall
//! or send garbage, clear-text stanzas toward a TLS-required peer, shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use s2spec::partner::{Method, Negotiation};
use s2spec::peer::{
    Authzid, DialbackOutcome, Failed, FeaturesSeen, GiveUp, Initiated, PeerEnv, PeerProfile,
    PeerServer, SaslOutcome, ServerEvent, Stage, StepFailure, TargetInfo, VerifyMode,
    ViolationKind, initiate,
};
use s2spec::pki::{CertVariant, Pki};
use s2spec::stream::{Dir, EntryKind, Transcript, XmppStream};
use s2spec::tls::ChainStatus;
use s2spec::xml::{Element, Event, Limits, NS_SERVER, StreamHeader};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

static PKI: LazyLock<Arc<Pki>> = LazyLock::new(|| Arc::new(Pki::new().expect("pki")));

const A: &str = "a.test";
const B: &str = "b.test";
/// Generous for loopback; only reached when something is wrong.
const STEP: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(5);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn profile(domain: &str, code: &str, cert: CertVariant) -> PeerProfile {
    PeerProfile::new(domain, Negotiation::from_code(code).expect("code"), cert)
}

fn env() -> PeerEnv {
    PeerEnv::new(PKI.clone(), Transcript::new())
        .expect("env")
        .with_step(STEP)
}

/// A's server (its authoritative role), B's server pointing back at A's,
/// and the result of A initiating toward B.
struct Run {
    env_a: PeerEnv,
    a_server: PeerServer,
    b_server: PeerServer,
    initiated: Initiated,
}

async fn run(a: PeerProfile, b: PeerProfile) -> Run {
    run_with(env(), a.clone(), a, b).await
}

/// [`run`] with A's environment given and A's authoritative server
/// configured apart from A's initiating role.
async fn run_with(env_a: PeerEnv, a_server: PeerProfile, a: PeerProfile, b: PeerProfile) -> Run {
    let env_b = env_a.for_another_peer().unwrap();
    // A's server is only A's authoritative server here: nobody sends it a
    // db:result, so its own target address is never dialled.
    let nowhere = TargetInfo {
        addr: "127.0.0.1:9".parse().expect("addr"),
        domain: B.into(),
    };
    let a_server = PeerServer::start(env_a.clone(), a_server, any_port(), nowhere)
        .await
        .expect("a server");
    let back_to_a = TargetInfo {
        addr: a_server.addr(),
        domain: A.into(),
    };
    let b_server = PeerServer::start(env_b, b, any_port(), back_to_a)
        .await
        .expect("b server");
    let initiated = initiate(&env_a, &a, b_server.addr(), B).await;
    Run {
        env_a,
        a_server,
        b_server,
        initiated,
    }
}

fn features(starttls: Option<bool>, external: bool, dialback: bool) -> FeaturesSeen {
    FeaturesSeen {
        starttls,
        mechanisms: if external {
            vec!["EXTERNAL".into()]
        } else {
            vec![]
        },
        dialback,
        other: vec![],
        empty_mechanisms: false,
    }
}

async fn authenticated_on(server: &PeerServer) -> Option<(String, Method)> {
    match server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Authenticated { .. }))
        .await
    {
        Some(ServerEvent::Authenticated { domain, method, .. }) => Some((domain, method)),
        _ => None,
    }
}

#[tokio::test]
async fn oo1_to_oo1_uses_sasl_external_and_delivers_a_message() {
    let mut r = run(
        profile(A, "OO1", CertVariant::Valid),
        profile(B, "OO1", CertVariant::Valid),
    )
    .await;
    let rep = &r.initiated.report;
    assert_eq!(rep.failure, None);
    assert!(rep.connected && rep.tls);
    assert_eq!(rep.tls_version.as_deref(), Some("TLSv1_3"));
    assert!(rep.target_cert.as_ref().is_some_and(|c| c.ok));
    assert_eq!(rep.features_clear, Some(features(Some(false), false, true)));
    assert_eq!(rep.features_tls, Some(features(None, true, true)));
    assert_eq!(rep.features_sasl, Some(features(None, false, false)));
    assert_eq!(rep.headers.len(), 3);
    assert!(rep.headers.iter().all(|h| h.from.as_deref() == Some(B)));
    assert_eq!(rep.sasl_authzid, None);
    assert_eq!(rep.sasl, Some(SaslOutcome::Success));
    assert_eq!(rep.dialback, None);
    assert_eq!(rep.method, Some(Method::SaslOverTls));
    assert_eq!(rep.gave_up, None);
    assert_eq!(rep.stream_error, None);
    assert!(!rep.target_closed);
    assert_eq!(rep.pipelined_bytes, 0);
    assert!(r.initiated.stream.is_some());

    let tls = r
        .b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Tls { .. }))
        .await;
    match tls {
        Some(ServerEvent::Tls { client_cert, .. }) => {
            assert!(client_cert.ok, "{client_cert:?}");
            assert_eq!(client_cert.domain, A);
        }
        other => panic!("no TLS event: {other:?}"),
    }
    assert_eq!(
        authenticated_on(&r.b_server).await,
        Some((A.into(), Method::SaslOverTls))
    );

    let message = Element::new(NS_SERVER, "message")
        .with_attr("from", "alice@a.test/laptop")
        .with_attr("to", "bob@b.test")
        .with_attr("id", "m1")
        .with_child(Element::new(NS_SERVER, "body").with_text("hello"));
    r.initiated.send_stanza(&message).await.expect("send");
    let seen = r
        .b_server
        .wait_for_stanza(WAIT, |s| s.id.as_deref() == Some("m1"))
        .await;
    match seen {
        Some(ServerEvent::Stanza {
            tls,
            method,
            domain,
            stanza,
            ..
        }) => {
            assert!(tls);
            assert_eq!(method, Method::SaslOverTls);
            assert_eq!(domain, A);
            assert_eq!(stanza.name, "message");
            assert_eq!(stanza.to.as_deref(), Some("bob@b.test"));
            assert_eq!(stanza.id.as_deref(), Some("m1"));
            assert_eq!(stanza.element, message);
        }
        other => panic!("no stanza event: {other:?}"),
    }
    // No dialback round trip happened: A's authoritative server saw nothing.
    assert!(r.a_server.events().is_empty());
    // The observations serialise for reports.
    let json = serde_json::to_string(&r.initiated.report).expect("json");
    assert!(json.contains(r#""method":"sasl-over-tls""#), "{json}");
    let events = serde_json::to_string(&r.b_server.events()).expect("json");
    assert!(events.contains(r#""event":"stanza""#), "{events}");
    r.initiated.close().await;
    r.b_server.shutdown().await;
    r.a_server.shutdown().await;
}

#[tokio::test]
async fn sasl_authzid_own_domain_succeeds_other_falls_back_to_dialback() {
    let own = run(
        profile(A, "OO1", CertVariant::Valid).with_authzid(Authzid::OwnDomain),
        profile(B, "OO1", CertVariant::Valid),
    )
    .await;
    assert_eq!(own.initiated.report.sasl_authzid.as_deref(), Some(A));
    assert_eq!(own.initiated.report.method, Some(Method::SaslOverTls));

    let other = run(
        profile(A, "OO1", CertVariant::Valid).with_authzid(Authzid::Other("c.test".into())),
        profile(B, "OO1", CertVariant::Valid),
    )
    .await;
    let rep = &other.initiated.report;
    assert_eq!(
        rep.sasl,
        Some(SaslOutcome::Failure {
            condition: "invalid-authzid".into()
        })
    );
    // XEP-0178: after a SASL failure, dialback on the same (TLS) stream.
    assert_eq!(rep.dialback, Some(DialbackOutcome::Valid));
    assert_eq!(rep.method, Some(Method::TlsDialback));
    assert_eq!(rep.failure, None);
}

#[tokio::test]
async fn on1_to_oo1_uses_tls_dialback_verified_by_the_authoritative_server() {
    let r = run(
        profile(A, "ON1", CertVariant::Valid),
        profile(B, "OO1", CertVariant::Valid),
    )
    .await;
    let rep = &r.initiated.report;
    assert_eq!(rep.failure, None);
    assert!(rep.tls);
    // B offers EXTERNAL (A's certificate is good) but A does not admit SASL.
    assert_eq!(rep.features_tls, Some(features(None, true, true)));
    assert_eq!(rep.sasl, None);
    assert_eq!(rep.dialback, Some(DialbackOutcome::Valid));
    assert_eq!(rep.method, Some(Method::TlsDialback));
    assert_eq!(rep.features_sasl, None);

    match r
        .b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Dialback { .. }))
        .await
    {
        Some(ServerEvent::Dialback { tls, handled, .. }) => {
            assert!(tls);
            assert_eq!((handled.from.as_str(), handled.to.as_str()), (A, B));
            assert_eq!(handled.verify, DialbackOutcome::Valid);
            assert_eq!(handled.verify_failure, None);
            assert_eq!(handled.answer, DialbackOutcome::Valid);
        }
        other => panic!("no dialback event: {other:?}"),
    }
    // A's authoritative server answered valid, on a stream B secured with TLS.
    match r
        .a_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Verify { .. }))
        .await
    {
        Some(ServerEvent::Verify {
            tls,
            from,
            to,
            answered,
            ..
        }) => {
            assert!(tls);
            assert_eq!((from.as_str(), to.as_str()), (B, A));
            assert_eq!(answered, Some(true));
        }
        other => panic!("no verify event: {other:?}"),
    }
    assert_eq!(
        authenticated_on(&r.b_server).await,
        Some((A.into(), Method::TlsDialback))
    );
    // The verification stream is not authenticated and carries no stanza.
    assert!(!r.a_server.events().iter().any(|e| matches!(
        e,
        ServerEvent::Authenticated { .. } | ServerEvent::Violation { .. }
    )));
}

#[tokio::test]
async fn nn1_to_on1_uses_tcp_dialback() {
    let r = run(
        profile(A, "NN1", CertVariant::Valid),
        profile(B, "ON1", CertVariant::Valid),
    )
    .await;
    let rep = &r.initiated.report;
    assert_eq!(rep.failure, None);
    assert!(!rep.tls);
    assert_eq!(rep.tls_version, None);
    assert_eq!(rep.target_cert, None);
    assert_eq!(rep.features_clear, Some(features(Some(false), false, true)));
    assert_eq!(rep.features_tls, None);
    assert_eq!(rep.dialback, Some(DialbackOutcome::Valid));
    assert_eq!(rep.method, Some(Method::TcpDialback));
    assert_eq!(
        authenticated_on(&r.b_server).await,
        Some((A.into(), Method::TcpDialback))
    );
    // A's server (NN1) offers no STARTTLS, so B verified in clear text.
    match r
        .a_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Verify { .. }))
        .await
    {
        Some(ServerEvent::Verify { tls, answered, .. }) => {
            assert!(!tls);
            assert_eq!(answered, Some(true));
        }
        other => panic!("no verify event: {other:?}"),
    }
}

#[tokio::test]
async fn rn1_to_nn1_gives_up_without_sending_anything() {
    let r = run(
        profile(A, "RN1", CertVariant::Valid),
        profile(B, "NN1", CertVariant::Valid),
    )
    .await;
    let rep = &r.initiated.report;
    assert_eq!(rep.features_clear, Some(features(None, false, true)));
    assert_eq!(rep.gave_up, Some(GiveUp::TlsNotOffered));
    assert_eq!(rep.method, None);
    assert!(!rep.tls);
    assert_eq!(rep.sasl, None);
    assert_eq!(rep.dialback, None);
    assert_eq!(rep.failure, None);
    assert!(r.initiated.stream.is_none());
    // On the wire: our header and our closing tag, nothing in between.
    let sent: Vec<String> = r
        .env_a
        .transcript
        .stream_entries(rep.stream_no)
        .into_iter()
        .filter(|e| e.dir == Dir::Sent && e.kind != EntryKind::Note)
        .map(|e| e.text)
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].contains("<stream:stream"));
    assert_eq!(sent[1], "</stream:stream>");
    // B saw the stream end and nothing else of interest.
    r.b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Closed { .. }))
        .await
        .expect("closed");
    assert!(r.b_server.events().iter().all(|e| matches!(
        e,
        ServerEvent::Header { .. } | ServerEvent::Closed { failure: None, .. }
    )));
}

#[tokio::test]
async fn rr0_without_client_certificate_is_refused() {
    let r = run(
        profile(A, "RR0", CertVariant::NoClientCert),
        profile(B, "RR0", CertVariant::Valid),
    )
    .await;
    let rep = &r.initiated.report;
    assert!(rep.tls);
    assert_eq!(rep.features_clear, Some(features(Some(true), false, false)));
    // No certificate: no EXTERNAL; RR0 admits no dialback: nothing at all.
    assert_eq!(rep.features_tls, Some(features(None, false, false)));
    assert_eq!(rep.gave_up, Some(GiveUp::NoCommonMethod));
    assert_eq!(rep.method, None);
    assert_eq!(rep.sasl, None);
    assert_eq!(rep.failure, None);
    match r
        .b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Tls { .. }))
        .await
    {
        Some(ServerEvent::Tls { client_cert, .. }) => {
            assert!(!client_cert.presented);
            assert_eq!(client_cert.chain, ChainStatus::NotPresented);
            assert!(!client_cert.ok);
        }
        other => panic!("no TLS event: {other:?}"),
    }
    assert!(
        !r.b_server
            .events()
            .iter()
            .any(|e| matches!(e, ServerEvent::Authenticated { .. }))
    );
}

#[tokio::test]
async fn expired_initiator_certificate_falls_back_to_tls_dialback() {
    let r = run(
        profile(A, "OO1", CertVariant::Expired),
        profile(B, "OO1", CertVariant::Valid),
    )
    .await;
    let rep = &r.initiated.report;
    assert_eq!(rep.failure, None);
    assert!(rep.tls);
    // B does not offer EXTERNAL for an expired certificate (XEP-0178).
    assert_eq!(rep.features_tls, Some(features(None, false, true)));
    assert_eq!(rep.sasl, None);
    assert_eq!(rep.dialback, Some(DialbackOutcome::Valid));
    assert_eq!(rep.method, Some(Method::TlsDialback));
    match r
        .b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Tls { .. }))
        .await
    {
        Some(ServerEvent::Tls { client_cert, .. }) => {
            assert!(client_cert.presented);
            assert_eq!(client_cert.chain, ChainStatus::Expired);
            assert!(client_cert.name_ok);
            assert!(!client_cert.ok);
        }
        other => panic!("no TLS event: {other:?}"),
    }
}

#[tokio::test]
async fn spoofing_authoritative_server_makes_dialback_invalid() {
    let r = run(
        profile(A, "ON1", CertVariant::Valid).with_verify_mode(VerifyMode::AlwaysInvalid),
        profile(B, "ON1", CertVariant::Valid),
    )
    .await;
    let rep = &r.initiated.report;
    assert!(rep.tls);
    assert_eq!(rep.dialback, Some(DialbackOutcome::Invalid));
    assert_eq!(rep.method, None);
    assert_eq!(rep.gave_up, Some(GiveUp::AuthenticationFailed));
    assert!(r.initiated.stream.is_none());
    match r
        .b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Dialback { .. }))
        .await
    {
        Some(ServerEvent::Dialback { handled, .. }) => {
            assert_eq!(handled.verify, DialbackOutcome::Invalid);
            assert_eq!(handled.answer, DialbackOutcome::Invalid);
        }
        other => panic!("no dialback event: {other:?}"),
    }
    assert!(
        !r.b_server
            .events()
            .iter()
            .any(|e| matches!(e, ServerEvent::Authenticated { .. }))
    );
}

#[tokio::test]
async fn silent_authoritative_server_gives_a_dialback_error() {
    let env_a = env().with_step(Duration::from_millis(300));
    let a = profile(A, "NN1", CertVariant::Valid).with_verify_mode(VerifyMode::Silent);
    let r = run_with(env_a, a.clone(), a, profile(B, "NN1", CertVariant::Valid)).await;
    let (rep, b_server) = (r.initiated.report, r.b_server);
    assert_eq!(
        rep.dialback,
        Some(DialbackOutcome::Error {
            condition: Some("remote-server-timeout".into())
        })
    );
    assert_eq!(rep.method, None);
    match b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Dialback { .. }))
        .await
    {
        Some(ServerEvent::Dialback { handled, .. }) => {
            assert_eq!(handled.verify, DialbackOutcome::NoAnswer);
            assert_eq!(
                handled.verify_failure,
                Some(Failed {
                    stage: Stage::Verify,
                    failure: StepFailure::Timeout
                })
            );
        }
        other => panic!("no dialback event: {other:?}"),
    }
}

/// SPEC §4.7: an authoritative server without dialback does not answer
/// `db:verify` in a namespace it never declared; it refuses the element
/// (RFC 6120 §4.9.3.24), so the receiving server can answer at once instead
/// of waiting for a verification that never comes.
#[tokio::test]
async fn authoritative_server_without_dialback_refuses_db_verify() {
    // A's authoritative server has no dialback; A's initiating role uses it.
    let r = run_with(
        env(),
        profile(A, "NN0", CertVariant::Valid),
        profile(A, "NN1", CertVariant::Valid),
        profile(B, "NN1", CertVariant::Valid),
    )
    .await;
    let (rep, a_server) = (r.initiated.report, r.a_server);
    assert_eq!(
        rep.dialback,
        Some(DialbackOutcome::Error {
            condition: Some("remote-connection-failed".into())
        })
    );
    let events = a_server.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ServerEvent::Verify { answered: None, .. })),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            ServerEvent::Refused { condition, .. } if condition == "unsupported-stanza-type"
        )),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ServerEvent::Violation { .. })),
        "trying dialback with a server that did not declare it is no violation: {events:?}"
    );
}

/// A "target" that accepts and then does `behave` with the socket.
async fn fake_target<F, Fut>(behave: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind(any_port()).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            behave(tcp).await;
        }
    });
    (addr, task)
}

#[tokio::test]
async fn silent_target_times_out_within_the_deadline() {
    let step = Duration::from_millis(300);
    let (addr, task) = fake_target(|tcp| async move {
        // Hold the connection open and say nothing.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tcp);
    })
    .await;
    let env = env().with_step(step);
    let started = Instant::now();
    let rep = initiate(&env, &profile(A, "OO1", CertVariant::Valid), addr, B)
        .await
        .report;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(rep.connected);
    assert_eq!(
        rep.failure,
        Some(Failed {
            stage: Stage::Header,
            failure: StepFailure::Timeout
        })
    );
    assert_eq!(rep.method, None);
    assert!(!rep.target_closed);
    task.abort();
}

#[tokio::test]
async fn garbage_target_gives_an_xml_error() {
    let (addr, task) = fake_target(|mut tcp| async move {
        let _ = tcp.write_all(b"<<<this is not xml>>>").await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let env = env().with_step(Duration::from_millis(300));
    let started = Instant::now();
    let rep = initiate(&env, &profile(A, "OO1", CertVariant::Valid), addr, B)
        .await
        .report;
    assert!(started.elapsed() < Duration::from_secs(2));
    match rep.failure {
        // The exact condition is the XML layer's business; any XML error will do.
        Some(Failed {
            stage: Stage::Header,
            failure: StepFailure::Xml { condition, .. },
        }) => assert!(!condition.is_empty()),
        other => panic!("expected an XML error: {other:?}"),
    }
    assert!(!rep.target_closed);
    task.abort();
}

#[tokio::test]
async fn target_closing_early_is_observed() {
    let (addr, task) = fake_target(|tcp| async move { drop(tcp) }).await;
    let env = env().with_step(Duration::from_millis(300));
    let rep = initiate(&env, &profile(A, "OO1", CertVariant::Valid), addr, B)
        .await
        .report;
    assert!(rep.target_closed);
    assert!(matches!(
        rep.failure,
        Some(Failed {
            stage: Stage::Header,
            failure: StepFailure::Closed | StepFailure::Io { .. }
        })
    ));
    task.abort();
}

#[tokio::test]
async fn clear_text_stanza_toward_tls_required_peer_is_a_violation() {
    let env = env();
    let b = PeerServer::start(
        env.clone(),
        profile(B, "RN1", CertVariant::Valid),
        any_port(),
        TargetInfo {
            addr: "127.0.0.1:9".parse().expect("addr"),
            domain: "t.test".into(),
        },
    )
    .await
    .expect("b");
    // A misbehaving target: header, then a stanza without STARTTLS or auth.
    let mut s = XmppStream::connect(b.addr(), Limits::default(), env.transcript.clone(), 999)
        .await
        .expect("connect");
    s.send_header(&StreamHeader::server().with_from("t.test").with_to(B))
        .await
        .expect("header");
    let mut saw_features = false;
    for _ in 0..2 {
        if let Ok(Event::Element(e)) = s.next(STEP).await {
            saw_features = e.name == "features";
            // RN1: STARTTLS required, no dialback in clear text.
            assert!(e.children_elements().count() == 1, "{e}");
        }
    }
    assert!(saw_features);
    let m = Element::new(NS_SERVER, "message")
        .with_attr("from", "eve@t.test")
        .with_attr("to", "bob@b.test");
    s.send(&m).await.expect("send");
    match b
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Violation { .. }))
        .await
    {
        Some(ServerEvent::Violation {
            tls, kind, element, ..
        }) => {
            assert!(!tls);
            assert_eq!(kind, ViolationKind::UnauthenticatedStanza);
            assert_eq!(element.map(|e| e.element), Some(m));
        }
        other => panic!("no violation: {other:?}"),
    }
    // The peer refuses with <not-authorized/> and closes.
    match s.next(STEP).await {
        Ok(Event::Element(e)) => assert!(
            e.child(s2spec::xml::NS_STREAM_ERRORS, "not-authorized")
                .is_some(),
            "{e}"
        ),
        other => panic!("expected a stream error: {other:?}"),
    }
    assert!(
        !b.events()
            .iter()
            .any(|e| matches!(e, ServerEvent::Stanza { .. }))
    );
    b.shutdown().await;
}

#[tokio::test]
async fn wrong_to_domain_is_refused_with_host_unknown() {
    let env = env();
    let b = PeerServer::start(
        env.clone(),
        profile(B, "OO1", CertVariant::Valid),
        any_port(),
        TargetInfo {
            addr: "127.0.0.1:9".parse().expect("addr"),
            domain: A.into(),
        },
    )
    .await
    .expect("b");
    let rep = initiate(
        &env,
        &profile(A, "OO1", CertVariant::Valid),
        b.addr(),
        "c.test",
    )
    .await
    .report;
    assert_eq!(rep.stream_error.as_deref(), Some("host-unknown"));
    assert!(rep.target_closed);
    assert_eq!(rep.failure.map(|f| f.stage), Some(Stage::Features));
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let env = env();
    let b = PeerServer::start(
        env.clone(),
        profile(B, "OO1", CertVariant::Valid),
        any_port(),
        TargetInfo {
            addr: "127.0.0.1:9".parse().expect("addr"),
            domain: A.into(),
        },
    )
    .await
    .expect("b");
    let addr = b.addr();
    // An open inbound stream must not keep the server alive.
    let _held = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    b.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn stream_numbers_are_distinct_across_peers_of_a_case() {
    let r = run(
        profile(A, "ON1", CertVariant::Valid),
        profile(B, "ON1", CertVariant::Valid),
    )
    .await;
    assert_eq!(r.initiated.report.method, Some(Method::TlsDialback));
    r.a_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Verify { .. }))
        .await
        .expect("verify");
    let mut streams: Vec<u32> = r
        .b_server
        .events()
        .iter()
        .chain(r.a_server.events().iter())
        .map(ServerEvent::stream)
        .collect();
    streams.push(r.initiated.report.stream_no);
    streams.sort_unstable();
    streams.dedup();
    // Initiating stream, B's inbound stream, B's verification stream (its
    // own number), A's inbound verification stream.
    let in_transcript: std::collections::BTreeSet<u32> = r
        .env_a
        .transcript
        .entries()
        .iter()
        .map(|e| e.stream)
        .collect();
    assert_eq!(in_transcript.len(), 4, "{in_transcript:?}");
    assert!(streams.len() >= 3);
}

#[tokio::test]
async fn stanza_from_another_domain_after_authentication_is_refused() {
    let mut r = run(
        profile(A, "NN1", CertVariant::Valid),
        profile(B, "NN1", CertVariant::Valid),
    )
    .await;
    assert_eq!(r.initiated.report.method, Some(Method::TcpDialback));
    let forged = Element::new(NS_SERVER, "message")
        .with_attr("from", "eve@c.test")
        .with_attr("to", "bob@b.test");
    r.initiated.send_stanza(&forged).await.expect("send");
    match r
        .b_server
        .wait_for(WAIT, |e| matches!(e, ServerEvent::Violation { .. }))
        .await
    {
        Some(ServerEvent::Violation { kind, .. }) => assert_eq!(kind, ViolationKind::InvalidFrom),
        other => panic!("no violation: {other:?}"),
    }
    assert_eq!(
        r.initiated.next_element(STEP).await,
        Err(StepFailure::StreamError {
            condition: "invalid-from".into()
        })
    );
}

/// Reads raw bytes until the end of the opening `<stream:stream …>` tag.
async fn read_header_bytes(tcp: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains("<stream:stream") || !got.ends_with(b">") {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

const DB_DECLARATION: &str = "xmlns:db='jabber:server:dialback'";

/// SPEC §4.7: a peer declares `xmlns:db` (XEP-0220 §2.4.1) on its stream
/// header exactly when its profile admits a dialback method, as initiating
/// and as receiving server, for every one of the 18 rows.
#[tokio::test]
async fn the_dialback_declaration_is_sent_exactly_when_the_profile_supports_dialback() {
    let (mut declared, mut undeclared) = (0, 0);
    for n in Negotiation::all() {
        let m = s2spec::partner::methods(n);
        let supports = m.contains(Method::TlsDialback) || m.contains(Method::TcpDialback);
        let p = PeerProfile::new(A, n, CertVariant::Valid);
        assert_eq!(p.advertises_dialback(), supports, "{n:?}");

        // Initiating: what reaches a listening "target".
        let listener = TcpListener::bind(any_port()).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let read = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            read_header_bytes(&mut tcp).await
        });
        let env = env().with_step(Duration::from_millis(200));
        let _ = initiate(&env, &p, addr, B).await;
        let sent = read.await.expect("reader");
        assert!(sent.contains("<stream:stream"), "{n:?}: {sent}");
        assert_eq!(
            sent.contains(DB_DECLARATION),
            supports,
            "initiating {n:?}: {sent}"
        );

        // Receiving: the header a peer server answers with.
        let nowhere = TargetInfo {
            addr: "127.0.0.1:9".parse().expect("addr"),
            domain: B.into(),
        };
        let server = PeerServer::start(env.clone(), p.clone(), any_port(), nowhere)
            .await
            .expect("server");
        let mut tcp = tokio::net::TcpStream::connect(server.addr())
            .await
            .expect("connect");
        tcp.write_all(
            format!(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
                 xmlns:stream='http://etherx.jabber.org/streams' from='{B}' to='{A}' \
                 version='1.0'>"
            )
            .as_bytes(),
        )
        .await
        .expect("write");
        let answer = read_header_bytes(&mut tcp).await;
        assert!(answer.contains("<stream:stream"), "{n:?}: {answer}");
        assert_eq!(
            answer.contains(DB_DECLARATION),
            supports,
            "receiving {n:?}: {answer}"
        );
        if supports {
            declared += 1;
        } else {
            undeclared += 1;
        }
        drop(tcp);
        server.shutdown().await;
    }
    // Both kinds of row exist, so the test distinguishes them.
    assert!(declared > 0 && undeclared > 0);
}

/// `wait_while_active` waits as long as the target keeps talking to the
/// peer's server (here: a new stream header every 300 ms, four times, longer
/// than the 1 s idle window in all), and ends after the idle window once it
/// stops.
#[tokio::test]
async fn an_active_target_is_waited_for_and_a_silent_one_is_not() {
    let nowhere = TargetInfo {
        addr: "127.0.0.1:9".parse().expect("addr"),
        domain: A.into(),
    };
    let server = PeerServer::start(
        env(),
        profile(B, "NN1", CertVariant::Valid),
        any_port(),
        nowhere,
    )
    .await
    .expect("server");
    let addr = server.addr();
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
         from='{A}' to='{B}' version='1.0'>"
    );
    let talker = tokio::spawn(async move {
        let mut open = Vec::new();
        for _ in 0..4 {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(header.as_bytes()).await.expect("header");
            open.push(s);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The last word: the first stream ends.
        let mut first = open.remove(0);
        first.write_all(b"</stream:stream>").await.expect("close");
        tokio::time::sleep(Duration::from_secs(3)).await;
    });
    let closed = server
        .wait_while_active(Duration::from_secs(1), Duration::from_secs(10), |e| {
            matches!(e, ServerEvent::Closed { .. })
        })
        .await;
    assert!(closed.is_some(), "{:?}", server.events());
    // Nothing more comes: the wait ends with nothing found, well before
    // its limit (a test of the limit itself would be a timed test).
    let more = server
        .wait_while_active(Duration::from_millis(300), Duration::from_secs(60), |e| {
            matches!(e, ServerEvent::Stanza { .. })
        })
        .await;
    assert!(more.is_none());
    talker.abort();
    server.shutdown().await;
}
