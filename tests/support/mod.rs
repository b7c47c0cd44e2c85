//! Small hand-written peers for the reference proxy's integration tests:
//! an [`Initiator`] (a partner server opening a stream to the proxy) and a
//! [`PeerServer`] (the partner's listener: receiving server for the proxy's
//! outbound streams and authoritative server for dialback), plus the fixture
//! that starts a mock DNS and a proxy. Every wait is bounded.

#![allow(dead_code)] // each test file uses a different part of this module

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rustls::RootCertStore;
use s2spec::dialback::{self, DbElement, DbKind, Secret};
use s2spec::dns::{MockDns, Zone};
use s2spec::features::Features;
use s2spec::partner::load_str;
use s2spec::pki::{CertVariant, KeyType, Leaf, Pki};
use s2spec::refproxy::{Config, Faults, ProxyEvent, RefProxy, Timeouts};
use s2spec::stream::{Dir, EntryKind, Transcript, XmppStream};
use s2spec::xml::header::stream_error_condition;
use s2spec::xml::{Element, Event, Limits, NS_SERVER, ReadError, StreamHeader};
use s2spec::{sasl, starttls, tls};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// The proxy's local domain.
pub const TARGET: &str = "target.test";
/// How long one expected element may take.
pub const STEP: Duration = Duration::from_secs(5);
/// How long "nothing happens" is watched for.
pub const QUIET: Duration = Duration::from_millis(700);
/// The bound on a whole test body.
pub const TEST: Duration = Duration::from_secs(40);
const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub static PKI: LazyLock<Pki> = LazyLock::new(|| Pki::new().expect("PKI"));

/// The dialback secret every simulated partner server uses.
pub fn peer_secret() -> Secret {
    Secret::new("s2spec-test-peer-secret")
}

pub fn leaf(domain: &str, variant: CertVariant) -> Option<Arc<Leaf>> {
    PKI.leaf(domain, variant, KeyType::Ecdsa).expect("leaf")
}

pub fn trust() -> Arc<RootCertStore> {
    tls::root_store(&[PKI.root_der().clone()]).expect("root store")
}

/// Bounds a test body.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST, body)
        .await
        .expect("the test did not finish in time");
}

/// One `[[partner]]` table: `code` is `<T><S><D>` as in SPEC §4.5.
pub fn partner(domain: &str, kind: &str, code: &str, extra: &str) -> String {
    let setting = |c: u8| match c {
        b'R' => "required",
        b'O' => "optional",
        b'N' => "not-supported",
        _ => panic!("bad code {code}"),
    };
    let b = code.as_bytes();
    format!(
        "[[partner]]\ndomain = \"{domain}\"\ntype = \"{kind}\"\ntls = \"{}\"\nsasl = \"{}\"\ndialback = {}\n{extra}\n",
        setting(b[0]),
        setting(b[1]),
        b[2] == b'1'
    )
}

/// A mock DNS with an empty `test` zone (unknown names are NXDOMAIN).
pub async fn dns() -> MockDns {
    MockDns::start("127.0.0.1:0".parse().unwrap(), [Zone::new("test")])
        .await
        .expect("mock DNS")
}

pub fn timeouts() -> Timeouts {
    Timeouts {
        negotiation: Duration::from_secs(5),
        idle: Duration::from_secs(30),
        step: Duration::from_secs(2),
        connect: Duration::from_secs(2),
        keepalive: Duration::from_secs(30),
    }
}

/// Starts a proxy serving `target.test` (users alice, bob) with these partners.
pub async fn proxy(dns: &MockDns, partners: &[String], faults: Faults) -> RefProxy {
    proxy_with(dns, partners, faults, 64).await
}

pub async fn proxy_with(
    dns: &MockDns,
    partners: &[String],
    faults: Faults,
    max_connections: usize,
) -> RefProxy {
    proxy_timed(dns, partners, faults, max_connections, timeouts()).await
}

/// Like [`proxy_with`], with explicit timeouts (keep-alive, idle tests).
pub async fn proxy_timed(
    dns: &MockDns,
    partners: &[String],
    faults: Faults,
    max_connections: usize,
    timeouts: Timeouts,
) -> RefProxy {
    let text = format!(
        "[local]\ndomains = [\"{TARGET}\"]\nusers = [\"alice\", \"bob\"]\n\n{}",
        partners.concat()
    );
    let loaded = load_str(&text, "test.toml").expect("partner set loads");
    let mut certs = HashMap::new();
    certs.insert(
        TARGET.to_string(),
        leaf(TARGET, CertVariant::Valid).unwrap(),
    );
    RefProxy::start(Config {
        partners: loaded,
        listen: "127.0.0.1:0".parse().unwrap(),
        dns: dns.addr(),
        trust: trust(),
        certs,
        faults,
        timeouts,
        limits: Limits::DEFAULT,
        max_connections,
        secret: None,
    })
    .await
    .expect("proxy starts")
}

pub fn faults(list: &[s2spec::refproxy::Fault]) -> Faults {
    list.iter().copied().collect()
}

/// Waits for the first event matching `pred`, looking at the past first.
pub async fn wait_event(
    proxy: &RefProxy,
    rx: &mut broadcast::Receiver<ProxyEvent>,
    pred: impl Fn(&ProxyEvent) -> bool,
) -> ProxyEvent {
    if let Some(e) = proxy.events().into_iter().find(|e| pred(e)) {
        return e;
    }
    let found = tokio::time::timeout(STEP, async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("proxy gone"),
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("no such event; events: {:#?}", proxy.events()))
}

pub fn delivered(proxy: &RefProxy) -> Vec<ProxyEvent> {
    proxy
        .events()
        .into_iter()
        .filter(|e| matches!(e, ProxyEvent::Delivered { .. }))
        .collect()
}

/// What one read gave.
#[derive(Debug)]
pub enum Got {
    Header(StreamHeader),
    Element(Element),
    End,
    Closed,
    Timeout,
}

async fn next_got(s: &mut XmppStream, wait: Duration) -> Got {
    loop {
        return match s.next(wait).await {
            Ok(Event::Whitespace) => continue,
            Ok(Event::Header(h)) => Got::Header(h),
            Ok(Event::Element(e)) => Got::Element(e),
            Ok(Event::End) => Got::End,
            Ok(Event::Eof) | Err(ReadError::Closed | ReadError::Busy | ReadError::Xml(_)) => {
                Got::Closed
            }
            Err(ReadError::Timeout) => Got::Timeout,
        };
    }
}

// ---------------------------------------------------------------------------
// The initiating partner server

/// A partner server that opens a stream to the proxy.
pub struct Initiator {
    pub s: XmppStream,
    pub from: String,
    pub to: String,
    /// The id of the proxy's last header.
    pub id: String,
}

impl Initiator {
    pub async fn connect(proxy: &RefProxy, from: &str) -> Initiator {
        Self::connect_to(proxy, from, TARGET).await
    }

    pub async fn connect_to(proxy: &RefProxy, from: &str, to: &str) -> Initiator {
        let s = XmppStream::connect(proxy.addr(), Limits::DEFAULT, Transcript::new(), 1)
            .await
            .expect("connect to proxy");
        Initiator {
            s,
            from: from.into(),
            to: to.into(),
            id: String::new(),
        }
    }

    pub async fn send_header(&mut self) {
        let h = StreamHeader::server()
            .with_from(self.from.clone())
            .with_to(self.to.clone());
        self.s.send_header(&h).await.expect("send header");
    }

    pub async fn next(&mut self) -> Got {
        next_got(&mut self.s, STEP).await
    }

    /// The next thing within `wait` (for "nothing happens" checks).
    pub async fn next_for(&mut self, wait: Duration) -> Got {
        next_got(&mut self.s, wait).await
    }

    /// The next element; panics on anything else.
    pub async fn element(&mut self) -> Element {
        match self.next().await {
            Got::Element(e) => e,
            other => panic!("expected an element, got {other:?}"),
        }
    }

    /// Reads the proxy's header and its features (the stream is not refused).
    pub async fn read_features(&mut self) -> Features {
        match self.next().await {
            Got::Header(h) => self.id = h.id.clone().expect("the proxy's header has an id"),
            other => panic!("expected the proxy's header, got {other:?}"),
        }
        let e = self.element().await;
        assert!(
            stream_error_condition(&e).is_none(),
            "stream error instead of features: {e:?}"
        );
        assert_no_empty_mechanisms(&e);
        Features::parse(&e).unwrap_or_else(|| panic!("not features: {e:?}"))
    }

    /// Header out, header and features in.
    pub async fn open(&mut self) -> Features {
        self.send_header().await;
        self.read_features().await
    }

    /// Reads until a stream error; returns its condition (`None` if the
    /// stream ended without one).
    pub async fn stream_error(&mut self) -> Option<String> {
        loop {
            match self.next().await {
                Got::Header(_) => continue,
                Got::Element(e) => {
                    if let Some(c) = stream_error_condition(&e) {
                        return Some(c.to_string());
                    }
                }
                Got::End | Got::Closed => return None,
                Got::Timeout => panic!("no stream error within {STEP:?}"),
            }
        }
    }

    /// `<starttls/>`, `<proceed/>`, handshake with `cert`; then a fresh stream.
    pub async fn starttls(&mut self, cert: Option<&Leaf>) -> Features {
        self.s.send(&starttls::starttls()).await.expect("send");
        let e = self.element().await;
        assert!(starttls::is_proceed(&e), "expected <proceed/>, got {e:?}");
        self.handshake(cert).await;
        self.open().await
    }

    pub async fn handshake(&mut self, cert: Option<&Leaf>) {
        let (config, _) =
            tls::client_config(&trust(), cert, tls::Transport::StartTls).expect("client config");
        self.s
            .starttls_client(config, tls::server_name(&self.to).unwrap())
            .await
            .expect("TLS handshake");
    }

    /// SASL EXTERNAL; returns the answer element.
    pub async fn external(&mut self, authzid: Option<&str>) -> Element {
        self.s
            .send(&sasl::auth_external(authzid))
            .await
            .expect("send");
        self.element().await
    }

    /// Sends `db:result` with the key for the current stream id (or `key`).
    pub async fn db_result(&mut self, key: Option<&str>) -> DbElement {
        let key = key
            .map(str::to_string)
            .unwrap_or_else(|| peer_secret().key(&self.to, &self.from, &self.id));
        self.s
            .send(&dialback::result_request(&self.from, &self.to, &key))
            .await
            .expect("send");
        let e = self.element().await;
        DbElement::parse(&e).unwrap_or_else(|| panic!("expected db:result, got {e:?}"))
    }

    /// Plain-text stream with TCP dialback, checked to succeed.
    pub async fn dialback_ok(&mut self) {
        let f = self.open().await;
        assert!(f.dialback, "dialback not offered: {f:?}");
        let answer = self.db_result(None).await;
        assert_eq!(answer.ty.as_deref(), Some("valid"), "{answer:?}");
    }

    pub async fn send(&mut self, e: &Element) {
        self.s.send(e).await.expect("send");
    }
}

pub fn assert_no_empty_mechanisms(features: &Element) {
    for m in features.children_elements() {
        if m.name == "mechanisms" {
            assert!(
                m.children_elements().next().is_some(),
                "empty <mechanisms/>: {features:?}"
            );
        }
    }
}

pub fn message(from: &str, to: &str, body: &str) -> Element {
    Element::new(NS_SERVER, "message")
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", format!("m-{body}"))
        .with_child(Element::new(NS_SERVER, "body").with_text(body))
}

pub fn presence(from: &str, to: &str, ty: &str) -> Element {
    Element::new(NS_SERVER, "presence")
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", ty)
}

// ---------------------------------------------------------------------------
// The partner's listener

/// What the partner's listener offers to the proxy's streams.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// `Some(required)` to offer STARTTLS.
    pub starttls: Option<bool>,
    /// Offer EXTERNAL after TLS (and accept it).
    pub external: bool,
    pub dialback: bool,
}

impl Profile {
    pub const DIALBACK_ONLY: Profile = Profile {
        starttls: None,
        external: false,
        dialback: true,
    };
    pub const TLS_DIALBACK: Profile = Profile {
        starttls: Some(false),
        external: false,
        dialback: true,
    };
    pub const ALL: Profile = Profile {
        starttls: Some(false),
        external: true,
        dialback: true,
    };
}

/// One element the listener received: connection number, TLS, element.
#[derive(Debug, Clone)]
pub struct Received {
    pub conn: u32,
    pub tls: bool,
    pub element: Element,
}

/// A partner domain's server: SRV in the mock DNS points at it. It answers
/// `db:verify` with the shared peer secret, verifies the proxy's `db:result`
/// with the proxy (its authoritative server), accepts STARTTLS and EXTERNAL
/// per its profile, and surfaces every element it receives.
pub struct PeerServer {
    pub domain: String,
    pub addr: SocketAddr,
    pub transcript: Transcript,
    rx: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PeerServer {
    /// Starts the listener and publishes its SRV record.
    pub async fn start(
        dns: &MockDns,
        domain: &str,
        profile: Profile,
        authoritative: Option<SocketAddr>,
    ) -> PeerServer {
        Self::start_on(dns, domain, profile, authoritative, SocketAddr::new(LO, 0)).await
    }

    /// [`PeerServer::start`] on `bind` (e.g. `[::1]:0`); the SRV record
    /// leads to its address and port.
    pub async fn start_on(
        dns: &MockDns,
        domain: &str,
        profile: Profile,
        authoritative: Option<SocketAddr>,
        bind: SocketAddr,
    ) -> PeerServer {
        let listener = TcpListener::bind(bind).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        dns.upsert_zone(Zone::xmpp_peer(domain, addr.ip(), addr.port()))
            .expect("zone");
        let transcript = Transcript::new();
        let (tx, rx) = mpsc::unbounded_channel();
        let (d, t) = (domain.to_string(), transcript.clone());
        let task = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for conn in 1u32.. {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let s = XmppStream::plain(tcp, Limits::DEFAULT, t.clone(), conn);
                let (d, tx) = (d.clone(), tx.clone());
                tasks.spawn(serve_peer(s, d, profile, authoritative, tx));
            }
        });
        PeerServer {
            domain: domain.into(),
            addr,
            transcript,
            rx,
            task,
        }
    }

    /// The next received element matching `pred` (others are dropped).
    pub async fn wait(&mut self, pred: impl Fn(&Element) -> bool) -> Received {
        let rx = &mut self.rx;
        tokio::time::timeout(STEP, async {
            loop {
                let r = rx.recv().await.expect("peer server gone");
                if pred(&r.element) {
                    return r;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the peer server did not receive the expected element"))
    }

    /// Everything received so far, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        let mut out = vec![];
        while let Ok(r) = self.rx.try_recv() {
            out.push(r);
        }
        out
    }

    /// Received XML other than stream headers and closing tags.
    pub fn received_content(&self) -> Vec<String> {
        self.transcript
            .entries()
            .into_iter()
            .filter(|e| e.dir == Dir::Received && e.kind == EntryKind::Xml)
            .map(|e| e.text)
            .filter(|t| {
                !t.starts_with("<stream:stream")
                    && !t.starts_with("<?xml")
                    && t != "</stream:stream>"
            })
            .collect()
    }
}

/// The namespace of the listener's own `<closed/>` marker.
pub const NS_TEST: &str = "urn:s2spec:test";

async fn serve_peer(
    s: XmppStream,
    domain: String,
    profile: Profile,
    authoritative: Option<SocketAddr>,
    tx: mpsc::UnboundedSender<Received>,
) {
    let conn = s.stream_no();
    let tls = serve_peer_stream(s, domain, profile, authoritative, tx.clone()).await;
    // Tell the test the connection is over: what it received is complete.
    let _ = tx.send(Received {
        conn,
        tls,
        element: Element::new(NS_TEST, "closed"),
    });
}

/// Serves one connection; returns whether it ended on TLS.
async fn serve_peer_stream(
    mut s: XmppStream,
    domain: String,
    profile: Profile,
    authoritative: Option<SocketAddr>,
    tx: mpsc::UnboundedSender<Received>,
) -> bool {
    let conn = s.stream_no();
    let mut authenticated = false;
    'stream: loop {
        let remote = match next_got(&mut s, STEP * 4).await {
            Got::Header(h) => h.from.unwrap_or_default(),
            _ => return s.is_tls(),
        };
        let id = format!("peer-{conn}-{}", s.is_tls() as u8);
        let header = StreamHeader::server()
            .with_from(domain.clone())
            .with_to(remote.clone())
            .with_id(id.clone());
        if s.send_header(&header).await.is_err() {
            return s.is_tls();
        }
        let features = if authenticated {
            Features::default()
        } else {
            Features {
                starttls: profile.starttls.filter(|_| !s.is_tls()),
                mechanisms: if s.is_tls() && profile.external {
                    vec![sasl::EXTERNAL.into()]
                } else {
                    vec![]
                },
                dialback: profile.dialback,
                other: vec![],
                empty_mechanisms: false,
            }
        };
        if s.send(&features.to_element()).await.is_err() {
            return s.is_tls();
        }
        loop {
            let e = match next_got(&mut s, STEP * 4).await {
                Got::Element(e) => e,
                _ => return s.is_tls(),
            };
            let _ = tx.send(Received {
                conn,
                tls: s.is_tls(),
                element: e.clone(),
            });
            if starttls::is_starttls(&e) {
                let cert = leaf(&domain, CertVariant::Valid).unwrap();
                let (config, _) =
                    tls::server_config(&trust(), &cert, tls::Transport::StartTls).unwrap();
                if s.send(&starttls::proceed()).await.is_err()
                    || s.starttls_server(config).await.is_err()
                {
                    return s.is_tls();
                }
                continue 'stream;
            }
            if sasl::parse_auth(&e).is_some() {
                authenticated = true;
                if s.send(&sasl::success()).await.is_err() || s.restart().is_err() {
                    return s.is_tls();
                }
                continue 'stream;
            }
            if let Some(db) = DbElement::parse(&e) {
                let answer = match (db.kind, db.ty.is_some()) {
                    (DbKind::Verify, false) => {
                        let id = db.id.clone().unwrap_or_default();
                        let valid = peer_secret().verify(&db.from, &db.to, &id, &db.key);
                        dialback::verify_answer(&db.to, &db.from, &id, valid)
                    }
                    (DbKind::Result, false) => {
                        let valid = match authoritative {
                            Some(auth) => ask_authoritative(auth, &db, &id).await,
                            None => true,
                        };
                        authenticated |= valid;
                        dialback::result_answer(&db.to, &db.from, valid)
                    }
                    _ => continue,
                };
                if s.send(&answer).await.is_err() {
                    return s.is_tls();
                }
            }
        }
    }
}

/// The receiving side of dialback: ask the originating domain's
/// authoritative server (the proxy) whether the key is its own.
async fn ask_authoritative(auth: SocketAddr, db: &DbElement, id: &str) -> bool {
    let Ok(mut s) = XmppStream::connect(auth, Limits::DEFAULT, Transcript::new(), 99).await else {
        return false;
    };
    let header = StreamHeader::server()
        .with_from(db.to.clone())
        .with_to(db.from.clone());
    if s.send_header(&header).await.is_err() {
        return false;
    }
    let verify = dialback::verify_request(&db.to, &db.from, id, &db.key);
    if s.send(&verify).await.is_err() {
        return false;
    }
    loop {
        match next_got(&mut s, STEP).await {
            Got::Header(_) => {}
            Got::Element(e) => {
                if let Some(v) = DbElement::parse(&e)
                    && v.kind == DbKind::Verify
                {
                    let _ = s.close().await;
                    return v.is_valid() && v.id.as_deref() == Some(id);
                }
            }
            _ => return false,
        }
    }
}
