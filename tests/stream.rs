//! Tests of `XmppStream` over real loopback TCP: headers, STARTTLS in both
//! roles with client certificates, pipelining, restarts, deadlines, transcript.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::crypto::ring;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use s2spec::stream::{Dir, EntryKind, StreamError, Transcript, XmppStream};
use s2spec::xml::{Element, Event, Limits, NS_SASL, NS_STREAMS, NS_TLS, ReadError, StreamHeader};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(5);

struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

struct Pki {
    ca: CertificateDer<'static>,
    server: Leaf,
    client: Leaf,
}

fn pki() -> Pki {
    let now = time::OffsetDateTime::now_utc();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "s2spec test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::days(1);
    ca_params.not_after = now + time::Duration::days(1);
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |name: &str| {
        let mut p = CertificateParams::new(vec![name.to_string()]).expect("params");
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::ExplicitNoCa;
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(1);
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &issuer).expect("leaf");
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    };
    Pki {
        ca: ca.der().clone(),
        server: leaf("b.example"),
        client: leaf("a.example"),
    }
}

fn roots(pki: &Pki) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).expect("root");
    Arc::new(roots)
}

fn server_config(pki: &Pki, alpn: bool) -> Arc<ServerConfig> {
    let provider = Arc::new(ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(pki), provider.clone())
        .allow_unauthenticated()
        .build()
        .expect("verifier");
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            pki.server.chain.clone(),
            PrivateKeyDer::Pkcs8(pki.server.key.clone_key()),
        )
        .expect("server cert");
    if alpn {
        cfg.alpn_protocols = vec![b"xmpp-server".to_vec()];
    }
    Arc::new(cfg)
}

fn client_config(pki: &Pki, with_cert: bool, alpn: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(pki));
    let mut cfg = if with_cert {
        builder
            .with_client_auth_cert(
                pki.client.chain.clone(),
                PrivateKeyDer::Pkcs8(pki.client.key.clone_key()),
            )
            .expect("client cert")
    } else {
        builder.with_no_client_auth()
    };
    if alpn {
        cfg.alpn_protocols = vec![b"xmpp-server".to_vec()];
    }
    Arc::new(cfg)
}

fn b_example() -> ServerName<'static> {
    ServerName::try_from("b.example").expect("name")
}

/// A connected pair: (initiating side as stream 1, receiving side as stream 2),
/// sharing one transcript.
async fn pair(transcript: &Transcript) -> (XmppStream, XmppStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let (client, accepted) = tokio::join!(
        XmppStream::connect(addr, Limits::default(), transcript.clone(), 1),
        listener.accept()
    );
    let (tcp, _) = accepted.expect("accept");
    let server = XmppStream::plain(tcp, Limits::default(), transcript.clone(), 2);
    (client.expect("connect"), server)
}

fn initiating_header() -> StreamHeader {
    StreamHeader::server()
        .with_from("a.example")
        .with_to("b.example")
}

fn receiving_header(id: &str) -> StreamHeader {
    StreamHeader::server()
        .with_from("b.example")
        .with_to("a.example")
        .with_id(id)
}

async fn expect_header(s: &mut XmppStream) -> StreamHeader {
    match s.next(T).await {
        Ok(Event::Header(h)) => h,
        other => panic!("expected a header, got {other:?}"),
    }
}

async fn expect_element(s: &mut XmppStream) -> Element {
    loop {
        match s.next(T).await {
            Ok(Event::Element(e)) => return e,
            Ok(Event::Whitespace) => continue,
            other => panic!("expected an element, got {other:?}"),
        }
    }
}

fn starttls() -> Element {
    Element::new(NS_TLS, "starttls")
}
fn proceed() -> Element {
    Element::new(NS_TLS, "proceed")
}
fn features_with_starttls() -> Element {
    Element::new(NS_STREAMS, "features")
        .with_child(starttls().with_child(Element::new(NS_TLS, "required")))
}

#[tokio::test]
async fn header_exchange() {
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    client
        .send_header(&initiating_header())
        .await
        .expect("send");
    let h = expect_header(&mut server).await;
    assert_eq!(h.from.as_deref(), Some("a.example"));
    assert_eq!(h.to.as_deref(), Some("b.example"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    assert_eq!(h.prefix_ns("db"), Some(s2spec::xml::NS_DIALBACK));

    server
        .send_header(&receiving_header("id-1"))
        .await
        .expect("send");
    let h = expect_header(&mut client).await;
    assert_eq!(h.id.as_deref(), Some("id-1"));
    assert_eq!(
        client.peer_header().and_then(|h| h.id.as_deref()),
        Some("id-1")
    );
    assert!(!client.is_tls() && client.peer_certificates().is_none());

    // A dialback element goes out with the header's `db` prefix.
    let result = Element::new(s2spec::xml::NS_DIALBACK, "result")
        .with_attr("from", "a.example")
        .with_attr("to", "b.example")
        .with_text("abc");
    client.send(&result).await.expect("send");
    assert_eq!(expect_element(&mut server).await, result);

    client.close().await.expect("close");
    assert_eq!(server.next(T).await, Ok(Event::End));
    assert_eq!(server.next(T).await, Ok(Event::Eof));
    let texts: Vec<String> = transcript
        .stream_entries(1)
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert!(
        texts.contains(&"<db:result from='a.example' to='b.example'>abc</db:result>".to_string()),
        "{texts:#?}"
    );
}

/// Negotiates STARTTLS with the initiating side presenting a client certificate.
async fn negotiate_tls(
    pki: &Pki,
    client: &mut XmppStream,
    server: &mut XmppStream,
    client_cert: bool,
) {
    let client_cfg = client_config(pki, client_cert, false);
    let server_cfg = server_config(pki, false);
    let c = async {
        client
            .send_header(&initiating_header())
            .await
            .expect("send");
        expect_header(client).await;
        let f = expect_element(client).await;
        assert!(f.child(NS_TLS, "starttls").is_some());
        client.send(&starttls()).await.expect("send");
        assert!(expect_element(client).await.is(NS_TLS, "proceed"));
        let discarded = client
            .starttls_client(client_cfg, b_example())
            .await
            .expect("client handshake");
        assert_eq!(discarded, 0);
        client
            .send_header(&initiating_header())
            .await
            .expect("send");
        expect_header(client).await
    };
    let s = async {
        expect_header(server).await;
        server
            .send_header(&receiving_header("s1"))
            .await
            .expect("send");
        server.send(&features_with_starttls()).await.expect("send");
        assert!(expect_element(server).await.is(NS_TLS, "starttls"));
        server.send(&proceed()).await.expect("send");
        let discarded = server
            .starttls_server(server_cfg)
            .await
            .expect("server handshake");
        assert_eq!(discarded, 0);
        let h = expect_header(server).await;
        server
            .send_header(&receiving_header("s2"))
            .await
            .expect("send");
        h
    };
    let (ch, sh) = tokio::join!(c, s);
    assert_eq!(ch.id.as_deref(), Some("s2"));
    assert_eq!(sh.from.as_deref(), Some("a.example"));
}

#[tokio::test]
async fn starttls_upgrade_in_both_roles_with_client_certificate() {
    let pki = pki();
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    negotiate_tls(&pki, &mut client, &mut server, true).await;

    assert!(client.is_tls() && server.is_tls());
    assert_eq!(client.tls_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(server.tls_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(client.peer_certificates(), Some(pki.server.chain.clone()));
    assert_eq!(server.peer_certificates(), Some(pki.client.chain.clone()));
    assert_eq!(
        server.tls_info().and_then(|t| t.sni.clone()).as_deref(),
        Some("b.example")
    );

    // Stanzas flow both ways over TLS.
    let msg = Element::new("jabber:server", "message").with_text("über TLS & more");
    client.send(&msg).await.expect("send");
    assert_eq!(expect_element(&mut server).await, msg);
    server.send(&msg).await.expect("send");
    assert_eq!(expect_element(&mut client).await, msg);

    // The transcript has both directions of both streams, with TLS flags.
    let entries = transcript.entries();
    for stream in [1, 2] {
        for dir in [Dir::Sent, Dir::Received] {
            for tls in [false, true] {
                assert!(
                    entries.iter().any(|e| e.stream == stream
                        && e.dir == dir
                        && e.tls == tls
                        && e.kind == EntryKind::Xml),
                    "no {dir:?} tls={tls} entry for stream {stream}: {entries:#?}"
                );
            }
        }
        let handshake = entries
            .iter()
            .find(|e| e.stream == stream && e.text.starts_with("TLS handshake complete"))
            .expect("handshake note");
        assert!(
            handshake.tls && handshake.text.contains("TLSv1_3"),
            "{handshake:?}"
        );
    }
    // `<starttls/>` was in the clear, `<message>` was not.
    assert!(
        entries
            .iter()
            .any(|e| !e.tls && e.text.contains("<starttls"))
    );
    assert!(entries.iter().all(|e| !e.text.contains("über") || e.tls));
    assert!(entries.windows(2).all(|w| w[0].at <= w[1].at));
    // Entries are plain serialisable data.
    let json = serde_json::to_string(&entries).expect("json");
    assert!(json.contains("\"dir\":\"received\""));
}

#[tokio::test]
async fn starttls_without_client_certificate() {
    let pki = pki();
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    negotiate_tls(&pki, &mut client, &mut server, false).await;
    assert_eq!(server.peer_certificates(), None);
    assert!(client.peer_certificates().is_some());
    assert_eq!(
        client
            .starttls_client(client_config(&pki, false, false), b_example())
            .await,
        Err(StreamError::AlreadyTls)
    );
}

#[tokio::test]
async fn pipelined_clear_text_after_starttls_is_discarded() {
    let pki = pki();
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    let evil = "<message to='victim'>injected</message>";
    let evil_back = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    let client_cfg = client_config(&pki, true, false);
    let server_cfg = server_config(&pki, false);

    let c = async {
        client
            .send_header(&initiating_header())
            .await
            .expect("send");
        expect_header(&mut client).await;
        expect_element(&mut client).await;
        // `<starttls/>` and an injected stanza in one write (one TCP segment).
        client
            .send_raw(format!("<starttls xmlns='{NS_TLS}'/>{evil}").as_bytes())
            .await
            .expect("send");
        assert!(expect_element(&mut client).await.is(NS_TLS, "proceed"));
        let discarded = client
            .starttls_client(client_cfg, b_example())
            .await
            .expect("client handshake");
        client
            .send_header(&initiating_header())
            .await
            .expect("send");
        expect_header(&mut client).await;
        client
            .send(&Element::new("jabber:server", "message").with_text("legit"))
            .await
            .expect("send");
        discarded
    };
    let s = async {
        expect_header(&mut server).await;
        server
            .send_header(&receiving_header("s1"))
            .await
            .expect("send");
        server.send(&features_with_starttls()).await.expect("send");
        // Let the whole pipelined write arrive before the reader asks for it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(expect_element(&mut server).await.is(NS_TLS, "starttls"));
        // The receiving side pipelines too: clear text after `<proceed/>`.
        server
            .send_raw(format!("<proceed xmlns='{NS_TLS}'/>{evil_back}").as_bytes())
            .await
            .expect("send");
        let discarded = server
            .starttls_server(server_cfg)
            .await
            .expect("server handshake");
        expect_header(&mut server).await;
        server
            .send_header(&receiving_header("s2"))
            .await
            .expect("send");
        // The first element after the upgrade is the legitimate one.
        let e = expect_element(&mut server).await;
        assert_eq!(e.text(), "legit");
        discarded
    };
    let (client_discarded, server_discarded) = tokio::join!(c, s);
    assert_eq!(server_discarded, evil.len());
    // The client read `<proceed/>` in the same segment as the injected bytes
    // unless the network split them; it must never have parsed them.
    assert!(client_discarded == evil_back.len() || client_discarded == 0);
    let entries = transcript.entries();
    assert!(
        entries.iter().any(|e| e.stream == 2
            && e.kind == EntryKind::Note
            && e.text.starts_with(&format!(
                "discarded {} pipelined clear-text bytes",
                evil.len()
            ))),
        "{entries:#?}"
    );
    assert!(
        !entries.iter().any(|e| e.dir == Dir::Received
            && e.kind == EntryKind::Xml
            && e.text.contains("injected")),
        "injected stanza was parsed: {entries:#?}"
    );
    assert!(
        !entries.iter().any(|e| e.dir == Dir::Received
            && e.kind == EntryKind::Xml
            && e.text.contains("success")),
        "injected success was parsed: {entries:#?}"
    );
}

#[tokio::test]
async fn restart_after_sasl_success() {
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    client
        .send_header(&initiating_header())
        .await
        .expect("send");
    expect_header(&mut server).await;
    server
        .send_header(&receiving_header("s1"))
        .await
        .expect("send");
    expect_header(&mut client).await;

    // The initiating side pipelines its new header right behind `<auth/>`, so
    // the receiving side's reader may already hold it when it restarts.
    let auth = Element::new(NS_SASL, "auth")
        .with_attr("mechanism", "EXTERNAL")
        .with_text("=");
    let mut bytes = auth.to_xml(&initiating_header().sent_ns_context());
    bytes.push_str(&initiating_header().with_id("ignored").to_xml());
    client.send_raw(bytes.as_bytes()).await.expect("send");

    assert_eq!(expect_element(&mut server).await, auth);
    server
        .send(&Element::new(NS_SASL, "success"))
        .await
        .expect("send");
    server.restart().expect("restart");
    let h = expect_header(&mut server).await;
    assert_eq!(h.from.as_deref(), Some("a.example"));
    server
        .send_header(&receiving_header("s2"))
        .await
        .expect("send");
    server
        .send(&Element::new(NS_STREAMS, "features"))
        .await
        .expect("send");

    assert!(expect_element(&mut client).await.is(NS_SASL, "success"));
    client.restart().expect("restart");
    assert!(client.peer_header().is_none());
    assert_eq!(expect_header(&mut client).await.id.as_deref(), Some("s2"));
    assert!(expect_element(&mut client).await.is(NS_STREAMS, "features"));
}

#[tokio::test]
async fn deadline_times_out_without_losing_the_stream() {
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    client
        .send_header(&initiating_header())
        .await
        .expect("send");
    expect_header(&mut server).await;
    server
        .send_header(&receiving_header("s1"))
        .await
        .expect("send");
    expect_header(&mut client).await;

    assert_eq!(
        client.next(Duration::from_millis(50)).await,
        Err(ReadError::Timeout)
    );
    // A keep-alive arrives on its own, without waiting for the next element.
    server.send_keepalive().await.expect("send");
    assert_eq!(client.next(T).await, Ok(Event::Whitespace));
    // Half an element, then another timeout: the partial bytes stay in the reader.
    server.send_raw(b"<message><bo").await.expect("send");
    assert_eq!(
        client.next(Duration::from_millis(50)).await,
        Err(ReadError::Timeout)
    );
    // STARTTLS is refused while that read is outstanding.
    assert_eq!(
        client
            .starttls_client(client_config(&pki(), false, false), b_example())
            .await,
        Err(StreamError::Busy)
    );
    server
        .send_raw(b"dy>late</body></message>")
        .await
        .expect("send");
    let e = expect_element(&mut client).await;
    assert_eq!(
        e.child("jabber:server", "body")
            .map(Element::text)
            .as_deref(),
        Some("late")
    );
}

#[tokio::test]
async fn stream_error_then_close() {
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    client
        .send_header(&initiating_header())
        .await
        .expect("send");
    expect_header(&mut server).await;
    server
        .send_header(&receiving_header("s1"))
        .await
        .expect("send");
    server
        .send_stream_error("host-unknown", Some("no such host"))
        .await
        .expect("send");
    expect_header(&mut client).await;
    let e = expect_element(&mut client).await;
    assert_eq!(
        s2spec::xml::header::stream_error_condition(&e),
        Some("host-unknown")
    );
    assert_eq!(client.next(T).await, Ok(Event::End));
    client.close().await.expect("close");
    assert_eq!(client.next(T).await, Ok(Event::Eof));
    assert_eq!(server.next(T).await, Ok(Event::End));
    // Writing after close is refused, not a panic.
    assert_eq!(server.send_raw(b" ").await, Err(StreamError::Closed));
    let notes: Vec<_> = transcript
        .stream_entries(1)
        .into_iter()
        .filter(|e| e.kind == EntryKind::Note)
        .map(|e| e.text)
        .collect();
    assert!(
        notes.contains(&"stream closed by peer".to_string()),
        "{notes:?}"
    );
}

#[tokio::test]
async fn malformed_bytes_are_reported_once_in_the_transcript() {
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    client
        .send_header(&initiating_header())
        .await
        .expect("send");
    expect_header(&mut server).await;
    client.send_raw(b"<!-- comment -->").await.expect("send");
    for _ in 0..2 {
        match server.next(T).await {
            Err(ReadError::Xml(e)) => assert_eq!(e.condition(), "restricted-xml"),
            other => panic!("{other:?}"),
        }
    }
    let errors = transcript
        .stream_entries(2)
        .into_iter()
        .filter(|e| e.text.starts_with("XML error (restricted-xml)"))
        .count();
    assert_eq!(errors, 1);
}

#[tokio::test]
async fn direct_tls_both_sides_with_alpn() {
    let pki = pki();
    let transcript = Transcript::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_cfg = server_config(&pki, true);
    let accept = async {
        let (tcp, _): (TcpStream, _) = listener.accept().await.expect("accept");
        XmppStream::accept_direct_tls(tcp, server_cfg, Limits::default(), transcript.clone(), 2)
            .await
    };
    let connect = XmppStream::connect_direct_tls(
        addr,
        client_config(&pki, true, true),
        b_example(),
        Limits::default(),
        transcript.clone(),
        1,
    );
    let (server, client) = tokio::join!(accept, connect);
    let (mut server, mut client) = (server.expect("accept"), client.expect("connect"));
    assert_eq!(
        client.tls_info().and_then(|t| t.alpn.clone()),
        Some(b"xmpp-server".to_vec())
    );
    assert_eq!(server.peer_certificates(), Some(pki.client.chain.clone()));
    client
        .send_header(&initiating_header())
        .await
        .expect("send");
    assert_eq!(
        expect_header(&mut server).await.from.as_deref(),
        Some("a.example")
    );
    assert!(transcript.entries().iter().all(|e| e.tls));
}

#[tokio::test]
async fn handshake_failure_is_reported_precisely() {
    let pki = pki();
    let other = self::pki(); // a CA the client does not trust
    let transcript = Transcript::new();
    let (mut client, mut server) = pair(&transcript).await;
    let c = client.starttls_client(client_config(&pki, false, false), b_example());
    let s = server.starttls_server(server_config(&other, false));
    let (c, _s) = tokio::join!(c, s);
    match c {
        Err(StreamError::Tls {
            rustls: Some(rustls::Error::InvalidCertificate(_)),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(client.send_raw(b"x").await, Err(StreamError::Closed));
    assert_eq!(client.next(T).await, Err(ReadError::Closed));
}
