//! Real handshakes over loopback TCP with the harness's TLS configs: what the
//! recording verifiers see on both sides, versions, ALPN and no resumption.

use std::sync::{Arc, LazyLock};

use rustls::{ClientConfig, HandshakeKind, ProtocolVersion, RootCertStore, ServerConfig};
use s2spec::pki::{CertVariant, KeyType, Leaf, Pki};
use s2spec::tls::{self, ChainStatus, IdKind, Transport, Verification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

const CLIENT_DOMAIN: &str = "origin.test";
const SERVER_DOMAIN: &str = "receiver.test";

static PKI: LazyLock<Pki> = LazyLock::new(|| Pki::new().expect("mint CA"));
static TRUST: LazyLock<Arc<RootCertStore>> =
    LazyLock::new(|| tls::root_store(&[PKI.root_der().clone()]).expect("root store"));

fn leaf(domain: &str, variant: CertVariant) -> Option<Arc<Leaf>> {
    PKI.leaf(domain, variant, KeyType::Ecdsa).expect("mint")
}

/// What one handshake looked like from both ends.
#[derive(Debug)]
struct Outcome {
    /// The server certificate as the client recorded it.
    client_saw: Verification,
    /// The client certificate as the server recorded it.
    server_saw: Verification,
    version: Option<ProtocolVersion>,
    client_alpn: Option<Vec<u8>>,
    server_alpn: Option<Vec<u8>>,
    kinds: (Option<HandshakeKind>, Option<HandshakeKind>),
}

/// One connection: handshake, one byte each way (so both ends are past the
/// handshake), then the recorders' contents.
async fn connect(
    client: Arc<ClientConfig>,
    client_rec: &tls::Recorder,
    server: Arc<ServerConfig>,
    server_rec: &tls::Recorder,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = TlsAcceptor::from(server)
            .accept(tcp)
            .await
            .expect("server handshake");
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
        tls.write_all(b"s").await.unwrap();
        tls.flush().await.unwrap();
        let (_, conn) = tls.get_ref();
        (
            conn.alpn_protocol().map(<[u8]>::to_vec),
            conn.handshake_kind(),
        )
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = tls::server_name(SERVER_DOMAIN).unwrap();
    let mut tls = TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .expect("client handshake");
    tls.write_all(b"c").await.unwrap();
    tls.flush().await.unwrap();
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await.unwrap();
    let (_, conn) = tls.get_ref();
    let version = conn.protocol_version();
    let client_alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let client_kind = conn.handshake_kind();
    let (server_alpn, server_kind) = accept.await.unwrap();
    Outcome {
        client_saw: client_rec.finish(),
        server_saw: server_rec.finish(),
        version,
        client_alpn,
        server_alpn,
        kinds: (client_kind, server_kind),
    }
}

/// A handshake with the server presenting `server_variant` for SERVER_DOMAIN
/// and the client `client_variant` for CLIENT_DOMAIN.
async fn pair(server_variant: CertVariant, client_variant: CertVariant) -> Outcome {
    let server_leaf = leaf(SERVER_DOMAIN, server_variant).expect("servers always have one");
    let client_leaf = leaf(CLIENT_DOMAIN, client_variant);
    let (client, client_rec) =
        tls::client_config(&TRUST, client_leaf.as_deref(), Transport::StartTls).unwrap();
    let (server, server_rec) =
        tls::server_config(&TRUST, &server_leaf, Transport::StartTls).unwrap();
    connect(client, &client_rec, server, &server_rec).await
}

#[tokio::test]
async fn valid_both_ways() {
    let out = pair(CertVariant::Valid, CertVariant::Valid).await;
    assert_eq!(out.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(out.client_saw.chain, ChainStatus::Valid);
    assert_eq!(out.server_saw.chain, ChainStatus::Valid);
    assert!(out.client_saw.presented && out.server_saw.presented);
    // The peers sent leaf + intermediate.
    assert_eq!(
        out.server_saw.intermediates,
        vec![PKI.intermediate_der().clone()]
    );
    assert_eq!(
        out.client_saw.intermediates,
        vec![PKI.intermediate_der().clone()]
    );
    let server_check = tls::check_peer(&out.client_saw, SERVER_DOMAIN);
    let client_check = tls::check_peer(&out.server_saw, CLIENT_DOMAIN);
    assert!(server_check.ok(), "{}", server_check.summary);
    assert!(client_check.ok(), "{}", client_check.summary);
    assert_eq!(client_check.identity.matched.unwrap().kind, IdKind::DnsId);
    // Each side's certificate is for its own domain, not the other's.
    assert!(!tls::check_peer(&out.server_saw, SERVER_DOMAIN).name_ok);
    assert_eq!(out.client_alpn, None, "no ALPN on STARTTLS");
}

#[tokio::test]
async fn expired_still_completes_and_is_recorded() {
    let out = pair(CertVariant::Expired, CertVariant::Expired).await;
    assert_eq!(out.client_saw.chain, ChainStatus::Expired);
    assert_eq!(out.server_saw.chain, ChainStatus::Expired);
    let check = tls::check_peer(&out.server_saw, CLIENT_DOMAIN);
    assert!(!check.chain_ok && check.name_ok);
}

#[tokio::test]
async fn self_signed_is_unknown_issuer() {
    let out = pair(CertVariant::SelfSigned, CertVariant::SelfSigned).await;
    assert_eq!(out.client_saw.chain, ChainStatus::UnknownIssuer);
    assert_eq!(out.server_saw.chain, ChainStatus::UnknownIssuer);
    assert!(out.server_saw.intermediates.is_empty());
}

#[tokio::test]
async fn no_client_cert_is_recorded_as_absent() {
    let out = pair(CertVariant::Valid, CertVariant::NoClientCert).await;
    assert_eq!(out.client_saw.chain, ChainStatus::Valid);
    assert_eq!(out.server_saw, Verification::absent());
    let check = tls::check_peer(&out.server_saw, CLIENT_DOMAIN);
    assert!(!check.ok());
    assert!(
        check.summary.contains("no certificate"),
        "{}",
        check.summary
    );
}

#[tokio::test]
async fn other_variants_over_the_wire() {
    for (variant, chain, name_ok) in [
        (CertVariant::UntrustedCa, ChainStatus::UnknownIssuer, true),
        (CertVariant::NotYetValid, ChainStatus::NotYetValid, true),
        (CertVariant::CnOnly, ChainStatus::Valid, false),
        (CertVariant::XmppAddrOnly, ChainStatus::Valid, true),
        (CertVariant::SrvIdOnly, ChainStatus::Valid, true),
        (CertVariant::WrongName, ChainStatus::Valid, false),
    ] {
        let out = pair(variant, variant).await;
        assert_eq!(out.client_saw.chain, chain, "server cert {variant}");
        assert_eq!(out.server_saw.chain, chain, "client cert {variant}");
        assert_eq!(
            tls::check_peer(&out.server_saw, CLIENT_DOMAIN).name_ok,
            name_ok,
            "{variant}"
        );
        assert_eq!(
            tls::check_peer(&out.client_saw, SERVER_DOMAIN).name_ok,
            name_ok,
            "{variant}"
        );
    }
}

#[tokio::test]
async fn rsa_certificates_handshake() {
    let server = PKI
        .leaf(SERVER_DOMAIN, CertVariant::Valid, KeyType::Rsa)
        .unwrap()
        .unwrap();
    let client = PKI
        .leaf(CLIENT_DOMAIN, CertVariant::Valid, KeyType::Rsa)
        .unwrap()
        .unwrap();
    let (cc, cr) = tls::client_config(&TRUST, Some(&client), Transport::StartTls).unwrap();
    let (sc, sr) = tls::server_config(&TRUST, &server, Transport::StartTls).unwrap();
    let out = connect(cc, &cr, sc, &sr).await;
    assert!(tls::check_peer(&out.client_saw, SERVER_DOMAIN).ok());
    assert!(tls::check_peer(&out.server_saw, CLIENT_DOMAIN).ok());
}

#[tokio::test]
async fn direct_tls_negotiates_alpn_xmpp_server() {
    let server_leaf = leaf(SERVER_DOMAIN, CertVariant::Valid).unwrap();
    let client_leaf = leaf(CLIENT_DOMAIN, CertVariant::Valid);
    let (cc, cr) =
        tls::client_config(&TRUST, client_leaf.as_deref(), Transport::DirectTls).unwrap();
    let (sc, sr) = tls::server_config(&TRUST, &server_leaf, Transport::DirectTls).unwrap();
    let out = connect(cc, &cr, sc, &sr).await;
    assert_eq!(out.client_alpn.as_deref(), Some(tls::ALPN_XMPP_SERVER));
    assert_eq!(out.server_alpn.as_deref(), Some(&b"xmpp-server"[..]));
    assert_eq!(out.server_saw.chain, ChainStatus::Valid);
}

#[tokio::test]
async fn tls12_peer_is_verified_too() {
    // A TLS 1.2-only initiating peer against the harness server config.
    let client_leaf = leaf(CLIENT_DOMAIN, CertVariant::Expired).unwrap();
    let server_leaf = leaf(SERVER_DOMAIN, CertVariant::Valid).unwrap();
    let client = ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(TRUST.clone())
        .with_client_auth_cert(
            client_leaf.chain_der.clone(),
            client_leaf.key_der.clone_key(),
        )
        .unwrap();
    let (sc, sr) = tls::server_config(&TRUST, &server_leaf, Transport::StartTls).unwrap();
    let unused = tls::Recorder::default();
    let out = connect(Arc::new(client), &unused, sc, &sr).await;
    assert_eq!(out.version, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(out.server_saw.chain, ChainStatus::Expired);
}

#[tokio::test]
async fn no_resumption_second_connection_reruns_verifiers() {
    // Reuse the very same configs: were resumption on, the second handshake
    // would be abbreviated and the verifiers would not run again.
    let server_leaf = leaf(SERVER_DOMAIN, CertVariant::Valid).unwrap();
    let client_leaf = leaf(CLIENT_DOMAIN, CertVariant::Valid);
    let (cc, cr) = tls::client_config(&TRUST, client_leaf.as_deref(), Transport::StartTls).unwrap();
    let (sc, sr) = tls::server_config(&TRUST, &server_leaf, Transport::StartTls).unwrap();
    assert_eq!(sc.send_tls13_tickets, 0);
    for round in 0..2 {
        let out = connect(cc.clone(), &cr, sc.clone(), &sr).await;
        assert!(
            out.client_saw.presented,
            "round {round}: client verifier ran"
        );
        assert!(
            out.server_saw.presented,
            "round {round}: server verifier ran"
        );
        assert_eq!(
            out.kinds,
            (Some(HandshakeKind::Full), Some(HandshakeKind::Full)),
            "round {round}"
        );
    }
}

#[test]
fn only_tls12_and_tls13_are_enabled() {
    let versions: Vec<ProtocolVersion> = tls::PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(
        versions,
        [ProtocolVersion::TLSv1_3, ProtocolVersion::TLSv1_2]
    );

    // What our client actually offers: the ClientHello's supported_versions.
    let (cc, _) = tls::client_config(&TRUST, None, Transport::StartTls).unwrap();
    let mut conn =
        rustls::ClientConnection::new(cc, tls::server_name(SERVER_DOMAIN).unwrap()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    assert_eq!(supported_versions(&hello), [0x0304, 0x0303]);
}

#[tokio::test]
async fn tls11_client_hello_is_refused() {
    let server_leaf = leaf(SERVER_DOMAIN, CertVariant::Valid).unwrap();
    let (sc, _) = tls::server_config(&TRUST, &server_leaf, Transport::StartTls).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        TlsAcceptor::from(sc).accept(tcp).await.is_ok()
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut reply = Vec::new();
    tcp.read_to_end(&mut reply).await.unwrap();
    assert!(
        !accept.await.unwrap(),
        "server must not complete a TLS 1.1 handshake"
    );
    // A fatal alert record: type 21, level 2, protocol_version (70).
    assert_eq!(reply.first(), Some(&21), "alert record, got {reply:02x?}");
    assert_eq!(&reply[5..7], &[2, 70], "fatal protocol_version alert");
}

/// A TLS 1.1 ClientHello: client_version 3.2 and no supported_versions. It
/// carries signature_algorithms only because rustls demands that extension
/// before it looks at the version (otherwise the alert is handshake_failure).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend([7u8; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend([0x01, 0x00]); // null compression
    body.extend([0x00, 0x08, 0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]); // sigalgs
    let mut handshake = vec![0x01, 0x00];
    handshake.extend((body.len() as u16).to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// The versions listed in a ClientHello record's supported_versions extension.
fn supported_versions(record: &[u8]) -> Vec<u16> {
    let u16_at = |i: usize| u16::from_be_bytes([record[i], record[i + 1]]) as usize;
    assert_eq!(record[0], 0x16, "handshake record");
    assert_eq!(record[5], 0x01, "ClientHello");
    let mut i = 5 + 4 + 2 + 32; // headers, client_version, random
    i += 1 + record[i] as usize; // session id
    i += 2 + u16_at(i); // cipher suites
    i += 1 + record[i] as usize; // compression
    let end = i + 2 + u16_at(i);
    i += 2;
    while i < end {
        let (kind, len) = (u16_at(i), u16_at(i + 2));
        if kind == 0x002b {
            let data = &record[i + 5..i + 4 + len];
            return data
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
        }
        i += 4 + len;
    }
    panic!("no supported_versions extension");
}
