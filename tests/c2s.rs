//! The c2s client against a tiny in-test server (STARTTLS, in-band
//! registration, PLAIN, bind, roster): login, the receive loop, typed
//! errors and deadlines. The real test is against Prosody and ejabberd
//! (tests/real_targets.rs); this one needs neither.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use s2spec::c2s::{Account, C2sError, Login, Session};
use s2spec::pki::{CertVariant, KeyType, Pki};
use s2spec::stream::{Transcript, XmppStream};
use s2spec::tls::{Transport, root_store, server_config_no_client_auth};
use s2spec::xml::{Element, Event, Limits, NS_CLIENT, NS_SASL, NS_STREAMS, NS_TLS, StreamHeader};
use tokio::net::TcpListener;
use tokio::time::Instant;

const DOMAIN: &str = "target.test";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_REGISTER: &str = "jabber:iq:register";
const WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Negotiates, then sends a message and a ping to the client.
    Normal,
    /// Accepts the TCP connection and says nothing.
    Silent,
}

fn header() -> StreamHeader {
    StreamHeader {
        version: Some("1.0".into()),
        default_ns: NS_CLIENT.into(),
        stream_ns_ok: true,
        prefixes: vec![("stream".into(), NS_STREAMS.into())],
        from: Some(DOMAIN.into()),
        id: Some("s1".into()),
        ..StreamHeader::default()
    }
}

async fn next_element(s: &mut XmppStream) -> Option<Element> {
    loop {
        match s.next(WAIT).await {
            Ok(Event::Element(e)) => return Some(e),
            Ok(Event::Header(_) | Event::Whitespace) => continue,
            _ => return None,
        }
    }
}

/// Answers a client header with ours and `features`.
async fn open(s: &mut XmppStream, features: Element) -> Option<()> {
    loop {
        match s.next(WAIT).await {
            Ok(Event::Header(_)) => break,
            Ok(Event::Whitespace) => continue,
            _ => return None,
        }
    }
    s.send_header(&header()).await.ok()?;
    s.send(&features).await.ok()
}

fn result(iq: &Element) -> Element {
    Element::new(NS_CLIENT, "iq")
        .with_attr("type", "result")
        .with_attr("id", iq.attr("id").unwrap_or_default())
}

/// One client connection: the server side of RFC 6120 negotiation, then a
/// message for the client and a ping it must answer. Returns the ping's answer.
async fn serve(
    listener: TcpListener,
    pki: Arc<Pki>,
    password: &'static str,
    behaviour: Behaviour,
) -> Option<Element> {
    let (tcp, _) = listener.accept().await.ok()?;
    if behaviour == Behaviour::Silent {
        tokio::time::sleep(WAIT * 2).await;
        return None;
    }
    let mut s = XmppStream::plain(tcp, Limits::default(), Transcript::new(), 1);
    let tls_feature = Element::new(NS_STREAMS, "features")
        .with_child(Element::new(NS_TLS, "starttls").with_child(Element::new(NS_TLS, "required")));
    open(&mut s, tls_feature).await?;
    next_element(&mut s)
        .await
        .filter(|e| e.is(NS_TLS, "starttls"))?;
    s.send(&Element::new(NS_TLS, "proceed")).await.ok()?;
    let leaf = pki
        .leaf(DOMAIN, CertVariant::Valid, KeyType::Ecdsa)
        .ok()??;
    let config = server_config_no_client_auth(&leaf, Transport::StartTls).ok()?;
    s.starttls_server(config).await.ok()?;
    let sasl = Element::new(NS_STREAMS, "features").with_child(
        Element::new(NS_SASL, "mechanisms")
            .with_child(Element::new(NS_SASL, "mechanism").with_text("PLAIN")),
    );
    open(&mut s, sasl).await?;
    loop {
        let e = next_element(&mut s).await?;
        if e.is(NS_CLIENT, "iq") && e.child(NS_REGISTER, "query").is_some() {
            s.send(&result(&e)).await.ok()?;
            continue;
        }
        if e.is(NS_SASL, "auth") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(e.text().trim())
                .ok()?;
            let want = format!("\0alice\0{password}");
            if bytes == want.as_bytes() {
                s.send(&Element::new(NS_SASL, "success")).await.ok()?;
                break;
            }
            let failure = Element::new(NS_SASL, "failure")
                .with_child(Element::new(NS_SASL, "not-authorized"));
            s.send(&failure).await.ok()?;
            return None;
        }
        return None;
    }
    s.restart().ok()?;
    let bind = Element::new(NS_STREAMS, "features").with_child(Element::new(NS_BIND, "bind"));
    open(&mut s, bind).await?;
    loop {
        let e = next_element(&mut s).await?;
        if e.is(NS_CLIENT, "presence") {
            break;
        }
        if e.child(NS_BIND, "bind").is_some() {
            let answer = result(&e)
                .with_child(Element::new(NS_BIND, "bind").with_child(
                    Element::new(NS_BIND, "jid").with_text("alice@target.test/s2spec"),
                ));
            s.send(&answer).await.ok()?;
        } else if e.is(NS_CLIENT, "iq") {
            s.send(&result(&e)).await.ok()?;
        }
    }
    let message = Element::new(NS_CLIENT, "message")
        .with_attr("from", "tester@peer.test")
        .with_attr("to", "alice@target.test")
        .with_attr("id", "m1")
        .with_child(Element::new(NS_CLIENT, "body").with_text("hello"));
    s.send(&message).await.ok()?;
    let ping = Element::new(NS_CLIENT, "iq")
        .with_attr("type", "get")
        .with_attr("id", "ping-1")
        .with_attr("from", DOMAIN)
        .with_child(Element::new("urn:xmpp:ping", "ping"));
    s.send(&ping).await.ok()?;
    let answer = next_element(&mut s).await;
    // Keep the stream open until the client closes it.
    let _ = next_element(&mut s).await;
    answer
}

/// A server for one connection on a fresh loopback port.
async fn start(
    password: &'static str,
    behaviour: Behaviour,
) -> (
    std::net::SocketAddr,
    Arc<Pki>,
    tokio::task::JoinHandle<Option<Element>>,
) {
    let pki = Arc::new(Pki::new().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, pki.clone(), password, behaviour));
    (addr, pki, server)
}

async fn login(
    addr: std::net::SocketAddr,
    pki: &Pki,
    account: &Account,
    wait: Duration,
) -> Result<Session, C2sError> {
    let trust = root_store(std::slice::from_ref(pki.root_der())).unwrap();
    Session::login(&Login {
        addr,
        domain: DOMAIN,
        account,
        trust,
        wait,
        register: true,
        resource: "s2spec",
    })
    .await
}

fn alice(password: &str) -> Account {
    Account {
        user: "alice".into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn a_client_logs_in_records_stanzas_and_answers_pings() {
    let since = Instant::now();
    let (addr, pki, server) = start("secret", Behaviour::Normal).await;
    let session = login(addr, &pki, &alice("secret"), WAIT).await.unwrap();
    assert_eq!(session.jid(), "alice@target.test/s2spec");
    assert_eq!(session.bare(), "alice@target.test");
    assert_eq!(session.mechanism(), "PLAIN");
    let got = session
        .wait_for(since, WAIT, |e| e.attr("id") == Some("m1"))
        .await
        .expect("the message reached the client");
    assert!(got.xml.contains("hello"), "{}", got.xml);
    // Nothing with another id comes; the wait ends on time.
    let t = Instant::now();
    let other = session
        .wait_for(since, Duration::from_millis(200), |e| {
            e.attr("id") == Some("m2")
        })
        .await;
    assert!(other.is_none());
    assert!(t.elapsed() < Duration::from_secs(1));
    // What came before `since` does not count.
    let before = session
        .wait_for(Instant::now(), Duration::from_millis(50), |e| {
            e.attr("id") == Some("m1")
        })
        .await;
    assert!(before.is_none());
    // Give the ping's answer time to go out, then close.
    tokio::time::sleep(Duration::from_millis(200)).await;
    session.close(Duration::from_secs(1)).await;
    let answer = tokio::time::timeout(WAIT * 2, server)
        .await
        .unwrap()
        .unwrap()
        .expect("the client answered the ping");
    assert_eq!(answer.attr("type"), Some("result"), "{answer:?}");
    assert_eq!(answer.attr("id"), Some("ping-1"));
}

#[tokio::test]
async fn a_wrong_password_is_a_typed_sasl_error() {
    let (addr, pki, server) = start("secret", Behaviour::Normal).await;
    let err = login(addr, &pki, &alice("wrong"), WAIT)
        .await
        .err()
        .expect("no login");
    match &err {
        C2sError::Sasl { mechanism, detail } => {
            assert_eq!(*mechanism, "PLAIN");
            assert!(detail.contains("not-authorized"), "{detail}");
        }
        other => panic!("{other}"),
    }
    server.abort();
}

#[tokio::test]
async fn a_silent_server_times_out_at_the_stream_header() {
    let (addr, pki, server) = start("x", Behaviour::Silent).await;
    let started = Instant::now();
    let err = login(addr, &pki, &alice("x"), Duration::from_millis(300))
        .await
        .err()
        .expect("no login");
    assert!(
        matches!(
            err,
            C2sError::Timeout {
                stage: "stream header",
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    server.abort();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let (addr, _pki, server) = start("secret", Behaviour::Normal).await;
    let stranger = Pki::new().unwrap();
    let err = login(addr, &stranger, &alice("secret"), WAIT)
        .await
        .err()
        .expect("no login");
    assert!(matches!(err, C2sError::Tls(_)), "{err}");
    server.abort();
}
