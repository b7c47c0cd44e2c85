//! Mock DNS server and S2S resolution over real loopback sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use s2spec::dns::{
    Candidate, MockDns, ResolveError, ResolverOptions, Service, SrvOrder, Transport, XmppResolver,
    Zone, parse_zone_file,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LO2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A zone with every record kind.
fn kinds_zone() -> Zone {
    Zone::new("kinds.test")
        .with_srv(
            Service::XmppServer,
            "kinds.test",
            5,
            10,
            5269,
            "xmpp.kinds.test",
        )
        .with_address("xmpp.kinds.test", LO)
        .with_address("v6.kinds.test", LO6)
        .with_cname("alias.kinds.test", "xmpp.kinds.test")
}

async fn start(zones: Vec<Zone>) -> (MockDns, XmppResolver) {
    let dns = MockDns::start(any_port(), zones)
        .await
        .expect("mock DNS starts");
    let resolver = XmppResolver::new(dns.addr()).expect("resolver");
    (dns, resolver)
}

fn resolver_over(dns: &MockDns, transport: Transport) -> XmppResolver {
    XmppResolver::with_options(
        dns.addr(),
        ResolverOptions {
            transport,
            ..ResolverOptions::default()
        },
    )
    .expect("resolver")
}

#[test]
fn handles_can_be_shared_across_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<MockDns>();
    send_sync::<XmppResolver>();
}

// ---------------------------------------------------------------- raw wire

#[derive(Debug, PartialEq)]
struct Answer {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<String>,
}

fn query_bytes(name: &str, rtype: RecordType, id: u16) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    msg.to_vec().unwrap()
}

fn answer_of(bytes: &[u8], id: u16) -> Answer {
    let msg = Message::from_vec(bytes).expect("a DNS message");
    assert_eq!(msg.metadata.id, id);
    assert_eq!(msg.metadata.message_type, MessageType::Response);
    let mut answers: Vec<String> = msg.answers.iter().map(|r| r.to_string()).collect();
    answers.sort();
    Answer {
        rcode: msg.metadata.response_code,
        authoritative: msg.metadata.authoritative,
        answers,
    }
}

async fn raw_udp(server: SocketAddr, name: &str, rtype: RecordType) -> Answer {
    let sock = UdpSocket::bind(any_port()).await.unwrap();
    sock.send_to(&query_bytes(name, rtype, 0x1234), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("UDP answer in time")
        .unwrap();
    answer_of(&buf[..n], 0x1234)
}

async fn raw_tcp(server: SocketAddr, name: &str, rtype: RecordType) -> Answer {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let q = query_bytes(name, rtype, 0x4321);
    // RFC 1035 §4.2.2: two-byte length prefix on TCP.
    stream
        .write_all(&(q.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&q).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut len))
        .await
        .expect("TCP answer in time")
        .unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).await.unwrap();
    answer_of(&buf, 0x4321)
}

#[tokio::test]
async fn raw_queries_get_the_same_answers_over_udp_and_tcp() {
    let (dns, _) = start(vec![kinds_zone()]).await;
    let cases: &[(&str, RecordType, ResponseCode, &[&str])] = &[
        (
            "_xmpp-server._tcp.kinds.test.",
            RecordType::SRV,
            ResponseCode::NoError,
            &["_xmpp-server._tcp.kinds.test. 60 IN SRV 5 10 5269 xmpp.kinds.test."],
        ),
        (
            "xmpp.kinds.test.",
            RecordType::A,
            ResponseCode::NoError,
            &["xmpp.kinds.test. 60 IN A 127.0.0.1"],
        ),
        (
            "v6.kinds.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
            &["v6.kinds.test. 60 IN AAAA ::1"],
        ),
        (
            "alias.kinds.test.",
            RecordType::CNAME,
            ResponseCode::NoError,
            &["alias.kinds.test. 60 IN CNAME xmpp.kinds.test."],
        ),
        // Name exists, type does not: NOERROR with no answers.
        (
            "xmpp.kinds.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
            &[],
        ),
        (
            "missing.kinds.test.",
            RecordType::A,
            ResponseCode::NXDomain,
            &[],
        ),
        (
            "_xmpps-server._tcp.kinds.test.",
            RecordType::SRV,
            ResponseCode::NXDomain,
            &[],
        ),
        // Outside every zone.
        ("example.com.", RecordType::A, ResponseCode::Refused, &[]),
    ];
    for (name, rtype, rcode, answers) in cases {
        let udp = raw_udp(dns.addr(), name, *rtype).await;
        let tcp = raw_tcp(dns.addr(), name, *rtype).await;
        assert_eq!(udp, tcp, "{name} {rtype}: UDP and TCP differ");
        assert_eq!(udp.rcode, *rcode, "{name} {rtype}");
        let want: Vec<String> = answers.iter().map(|s| s.to_string()).collect();
        // hickory prints records with tabs or spaces; compare whitespace-insensitively.
        let norm = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        assert_eq!(norm(&udp.answers), norm(&want), "{name} {rtype}");
        if *rcode != ResponseCode::Refused {
            assert!(udp.authoritative, "{name} {rtype}: AA flag");
        }
    }
}

// ------------------------------------------------------------ resolver API

#[tokio::test]
async fn resolver_queries_every_record_kind_over_udp_only_and_tcp_only() {
    let dns = MockDns::start(any_port(), [kinds_zone()]).await.unwrap();
    for transport in [Transport::Udp, Transport::Tcp] {
        let r = resolver_over(&dns, transport);
        let srv = r
            .lookup_srv(Service::XmppServer, "kinds.test")
            .await
            .unwrap();
        assert_eq!(srv.len(), 1, "{transport:?}");
        assert_eq!(
            (
                srv[0].priority,
                srv[0].weight,
                srv[0].port,
                srv[0].target.as_str()
            ),
            (5, 10, 5269, "xmpp.kinds.test"),
            "{transport:?}"
        );
        assert_eq!(
            r.lookup_ip("xmpp.kinds.test").await,
            Ok(vec![LO]),
            "{transport:?}"
        );
        assert_eq!(
            r.lookup_ip("v6.kinds.test").await,
            Ok(vec![LO6]),
            "{transport:?}"
        );
        assert_eq!(
            r.lookup_cname("alias.kinds.test").await,
            Ok(Some("xmpp.kinds.test".into())),
            "{transport:?}"
        );
        // lookup_ip follows the CNAME.
        assert_eq!(
            r.lookup_ip("alias.kinds.test").await,
            Ok(vec![LO]),
            "{transport:?}"
        );
        assert_eq!(
            r.lookup_ip("missing.kinds.test").await,
            Err(ResolveError::NxDomain("missing.kinds.test".into())),
            "{transport:?}"
        );
        assert_eq!(
            r.lookup_srv(Service::XmppsServer, "kinds.test").await,
            Err(ResolveError::NxDomain(
                "_xmpps-server._tcp.kinds.test".into()
            )),
            "{transport:?}"
        );
        // Raw hickory lookup through the same resolver, as the harness may do.
        let lookup = r
            .hickory()
            .lookup("xmpp.kinds.test.", RecordType::A)
            .await
            .unwrap();
        assert!(
            lookup
                .answers()
                .iter()
                .any(|rec| matches!(rec.data, RData::A(a) if a.0 == Ipv4Addr::LOCALHOST))
        );
    }
}

#[tokio::test]
async fn resolver_never_uses_the_hosts_file() {
    // Every name in /etc/hosts (except the RFC 6761 "localhost" names, which
    // hickory answers itself) must be unknown to our resolver.
    let (_dns, r) = start(vec![Zone::new("test")]).await;
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let names: Vec<&str> = hosts
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace().skip(1))
        .filter(|n| !n.contains("localhost") && s2spec::dns::zone::check_name(n).is_ok())
        .collect();
    for name in names {
        assert!(
            r.lookup_ip(name).await.is_err(),
            "{name} resolved from outside the mock"
        );
    }
}

fn summary(c: &[Candidate]) -> Vec<(String, u16, bool)> {
    c.iter()
        .map(|c| (c.host.clone(), c.port, c.direct_tls))
        .collect()
}

fn s(host: &str, port: u16, tls: bool) -> (String, u16, bool) {
    (host.to_owned(), port, tls)
}

// ------------------------------------------- RFC 6120 §3.2 / XEP-0368 order

#[tokio::test]
async fn xmpp_peer_builder_resolves_to_its_port() {
    let (_dns, r) = start(vec![Zone::xmpp_peer("fabrikam.test", LO, 15269)]).await;
    let c = r.resolve_s2s("fabrikam.test").await.unwrap();
    assert_eq!(
        c,
        vec![Candidate {
            host: "fabrikam.test".into(),
            port: 15269,
            direct_tls: false,
            addrs: vec![LO],
        }]
    );
    assert_eq!(
        c[0].socket_addrs().collect::<Vec<_>>(),
        vec![SocketAddr::new(LO, 15269)]
    );
}

#[tokio::test]
async fn xmpps_and_xmpp_records_are_mixed_by_priority() {
    // XEP-0368 §3: one RFC 2782 ordering over both services. Here the
    // STARTTLS record has the better priority, so it comes first.
    let zone = Zone::new("mix.test")
        .with_srv(
            Service::XmppsServer,
            "mix.test",
            20,
            0,
            5270,
            "tls.mix.test",
        )
        .with_srv(
            Service::XmppServer,
            "mix.test",
            10,
            0,
            5269,
            "plain.mix.test",
        )
        .with_address("tls.mix.test", LO)
        .with_address("plain.mix.test", LO2);
    let (_dns, r) = start(vec![zone]).await;
    let c = r.resolve_s2s("mix.test").await.unwrap();
    assert_eq!(
        summary(&c),
        vec![
            s("plain.mix.test", 5269, false),
            s("tls.mix.test", 5270, true)
        ]
    );
    assert_eq!(c[0].addrs, vec![LO2]);
}

#[tokio::test]
async fn equal_priority_and_weight_prefers_direct_tls() {
    let zone = Zone::new("tie.test")
        .with_srv(Service::XmppServer, "tie.test", 10, 5, 5269, "a.tie.test")
        .with_srv(Service::XmppsServer, "tie.test", 10, 5, 5270, "b.tie.test")
        .with_address("a.tie.test", LO)
        .with_address("b.tie.test", LO);
    let (_dns, r) = start(vec![zone]).await;
    let c = r.resolve_s2s("tie.test").await.unwrap();
    assert_eq!(
        summary(&c),
        vec![s("b.tie.test", 5270, true), s("a.tie.test", 5269, false)]
    );
}

#[tokio::test]
async fn priority_first_then_weight() {
    let zone = Zone::new("multi.test")
        .with_srv(
            Service::XmppServer,
            "multi.test",
            20,
            100,
            4003,
            "d.multi.test",
        )
        .with_srv(
            Service::XmppServer,
            "multi.test",
            10,
            1,
            4002,
            "c.multi.test",
        )
        .with_srv(
            Service::XmppServer,
            "multi.test",
            10,
            60,
            4001,
            "b.multi.test",
        )
        .with_srv(
            Service::XmppServer,
            "multi.test",
            5,
            0,
            4000,
            "a.multi.test",
        )
        .with_address("a.multi.test", LO)
        .with_address("b.multi.test", LO)
        .with_address("c.multi.test", LO)
        .with_address("d.multi.test", LO);
    let (dns, r) = start(vec![zone]).await;
    let c = r.resolve_s2s("multi.test").await.unwrap();
    let ports: Vec<u16> = c.iter().map(|c| c.port).collect();
    assert_eq!(ports, [4000, 4001, 4002, 4003]);

    // Seeded RFC 2782 mode: reproducible, and priorities still respected.
    let seeded = |seed| {
        XmppResolver::with_options(
            dns.addr(),
            ResolverOptions {
                order: SrvOrder::Weighted { seed },
                ..ResolverOptions::default()
            },
        )
        .unwrap()
    };
    for seed in 0..5 {
        let a = seeded(seed).resolve_s2s("multi.test").await.unwrap();
        let b = seeded(seed).resolve_s2s("multi.test").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].port, 4000);
        assert_eq!(a[3].port, 4003);
    }
}

#[tokio::test]
async fn no_srv_falls_back_to_a_on_5269_without_direct_tls() {
    let (_dns, r) = start(vec![Zone::a_only("aonly.test", LO2)]).await;
    let c = r.resolve_s2s("aonly.test").await.unwrap();
    assert_eq!(
        c,
        vec![Candidate {
            host: "aonly.test".into(),
            port: 5269,
            direct_tls: false,
            addrs: vec![LO2],
        }]
    );
}

#[tokio::test]
async fn dot_target_means_unavailable_and_no_fallback() {
    // The A record exists, but the explicit "no service" must win.
    let zone = Zone::service_unavailable("dot.test").with_address("dot.test", LO);
    let (_dns, r) = start(vec![zone]).await;
    assert_eq!(
        r.resolve_s2s("dot.test").await,
        Err(ResolveError::ServiceUnavailable("dot.test".into()))
    );
}

#[tokio::test]
async fn dot_for_one_service_leaves_the_other_usable() {
    let zone = Zone::service_unavailable("half.test")
        .with_srv(Service::XmppsServer, "half.test", 0, 0, 5270, "half.test")
        .with_address("half.test", LO);
    let (_dns, r) = start(vec![zone]).await;
    let c = r.resolve_s2s("half.test").await.unwrap();
    assert_eq!(summary(&c), vec![s("half.test", 5270, true)]);
}

#[tokio::test]
async fn unknown_domain_is_nxdomain_inside_a_zone_and_refused_outside() {
    let (_dns, r) = start(vec![Zone::new("test")]).await;
    assert_eq!(
        r.resolve_s2s("ghost.test").await,
        Err(ResolveError::NxDomain("ghost.test".into()))
    );
    match r.resolve_s2s("ghost.example").await {
        Err(ResolveError::Other(m)) => assert!(m.contains("Refused"), "{m}"),
        other => panic!("expected REFUSED, got {other:?}"),
    }
}

#[tokio::test]
async fn srv_to_unresolvable_host() {
    let zone = Zone::new("dead.test").with_srv(
        Service::XmppServer,
        "dead.test",
        0,
        0,
        5269,
        "nowhere.dead.test",
    );
    let (_dns, r) = start(vec![zone]).await;
    assert_eq!(
        r.resolve_s2s("dead.test").await,
        Err(ResolveError::NoAddress("nowhere.dead.test".into()))
    );
}

#[tokio::test]
async fn unresolvable_targets_are_skipped_and_cnames_followed() {
    let zone = Zone::new("skip.test")
        .with_srv(
            Service::XmppServer,
            "skip.test",
            1,
            0,
            4001,
            "gone.skip.test",
        )
        .with_srv(
            Service::XmppServer,
            "skip.test",
            2,
            0,
            4002,
            "alias.skip.test",
        )
        .with_cname("alias.skip.test", "real.skip.test")
        .with_address("real.skip.test", LO2)
        .with_address("real.skip.test", LO6);
    let (_dns, r) = start(vec![zone]).await;
    let c = r.resolve_s2s("skip.test").await.unwrap();
    assert_eq!(
        c,
        vec![Candidate {
            host: "alias.skip.test".into(),
            port: 4002,
            direct_tls: false,
            addrs: vec![LO2, LO6],
        }]
    );
}

#[tokio::test]
async fn names_are_case_insensitive_and_may_end_with_a_dot() {
    let (_dns, r) = start(vec![Zone::xmpp_peer("Case.Test", LO, 7000)]).await;
    let c = r.resolve_s2s("CASE.test.").await.unwrap();
    assert_eq!(summary(&c), vec![s("case.test", 7000, false)]);
}

// -------------------------------------------------------- live zone changes

#[tokio::test]
async fn zones_added_replaced_and_removed_while_running() {
    let (dns, r) = start(vec![Zone::new("test")]).await;
    assert_eq!(
        r.resolve_s2s("late.test").await,
        Err(ResolveError::NxDomain("late.test".into()))
    );

    dns.upsert_zone(Zone::xmpp_peer("late.test", LO, 6000))
        .unwrap();
    assert_eq!(r.resolve_s2s("late.test").await.unwrap()[0].port, 6000);

    dns.upsert_zone(Zone::xmpp_peer("late.test", LO, 6001))
        .unwrap();
    assert_eq!(r.resolve_s2s("late.test").await.unwrap()[0].port, 6001);
    assert_eq!(dns.origins(), vec!["late.test".to_string(), "test".into()]);

    assert!(dns.remove_zone("late.test").is_some());
    assert_eq!(
        r.resolve_s2s("late.test").await,
        Err(ResolveError::NxDomain("late.test".into()))
    );
    assert!(dns.remove_zone("late.test").is_none());
}

#[tokio::test]
async fn invalid_zones_are_refused() {
    let (dns, _) = start(vec![]).await;
    let bad = Zone::new("bad.test").with_address("elsewhere.test", LO);
    assert!(dns.upsert_zone(bad).is_err());
    let public = Zone::a_only("bad.test", "192.0.2.1".parse().unwrap());
    let err = dns.upsert_zone(public).unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");
    assert!(dns.origins().is_empty());
}

#[tokio::test]
async fn start_refuses_non_loopback_and_busy_ports() {
    let err = MockDns::start("0.0.0.0:0".parse().unwrap(), [])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");

    let first = MockDns::start(any_port(), []).await.unwrap();
    let err = MockDns::start(first.addr(), []).await.unwrap_err();
    assert!(
        err.to_string().contains(&first.addr().to_string()),
        "error names the address: {err}"
    );
}

#[tokio::test]
async fn a_port_taken_for_tcp_only_is_reported() {
    // Take a TCP port, leave its UDP twin free: UDP binds, TCP must fail.
    let tcp = std::net::TcpListener::bind(any_port()).unwrap();
    let addr = tcp.local_addr().unwrap();
    match MockDns::start(addr, []).await {
        Err(s2spec::dns::ServerError::Bind { addr: a, proto, .. }) => {
            // "udp" only if another process happens to hold the UDP twin.
            assert_eq!(a, addr);
            assert!(proto == "tcp" || proto == "udp", "{proto}");
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_stops_answering() {
    let (dns, r) = start(vec![Zone::xmpp_peer("bye.test", LO, 5269)]).await;
    let addr = dns.addr();
    assert!(r.resolve_s2s("bye.test").await.is_ok());
    let r = quick(&dns);
    dns.shutdown().await;
    // Nobody answers on UDP any more: the resolver times out.
    assert_eq!(r.resolve_s2s("bye.test").await, Err(ResolveError::Timeout));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "TCP listener closed"
    );
}

#[tokio::test]
async fn drop_stops_answering() {
    let (dns, r) = start(vec![Zone::xmpp_peer("bye.test", LO, 5269)]).await;
    assert!(r.resolve_s2s("bye.test").await.is_ok());
    let addr = dns.addr();
    let r = quick(&dns);
    drop(dns);
    // Aborted tasks release their sockets asynchronously; give them a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Nobody answers on UDP any more: the resolver times out.
    assert_eq!(r.resolve_s2s("bye.test").await, Err(ResolveError::Timeout));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "TCP listener closed"
    );
}

/// A resolver that gives up fast, for servers that are gone.
fn quick(dns: &MockDns) -> XmppResolver {
    XmppResolver::with_options(
        dns.addr(),
        ResolverOptions {
            timeout: Duration::from_millis(200),
            attempts: 1,
            ..ResolverOptions::default()
        },
    )
    .unwrap()
}

// ---------------------------------------------------------------- zone files

#[test]
fn example_zone_file_parses() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/dns/example-zone.toml"
    );
    let zones = s2spec::dns::load_zone_file(std::path::Path::new(path)).unwrap();
    let origins: Vec<&str> = zones.iter().map(|z| z.origin.as_str()).collect();
    assert_eq!(origins, ["fabrikam.test", "contoso.test", "nope.test"]);
    assert_eq!(zones[0].records.len(), 6);
    assert!(zones[0].records.contains(&s2spec::dns::Record::srv(
        Service::XmppsServer,
        "fabrikam.test",
        10,
        5,
        5270,
        "xmpp.fabrikam.test"
    )));
}

#[tokio::test]
async fn example_zone_file_resolves() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/dns/example-zone.toml"
    );
    let zones = s2spec::dns::load_zone_file(std::path::Path::new(path)).unwrap();
    let (_dns, r) = start(zones).await;
    let c = r.resolve_s2s("fabrikam.test").await.unwrap();
    assert_eq!(
        summary(&c),
        vec![
            s("xmpp.fabrikam.test", 5270, true),
            s("xmpp.fabrikam.test", 5269, false),
            s("backup.fabrikam.test", 15269, false),
        ]
    );
    assert_eq!(c[0].addrs, vec![LO, LO6]);
    assert_eq!(
        summary(&r.resolve_s2s("contoso.test").await.unwrap()),
        vec![s("contoso.test", 5269, false)]
    );
    assert_eq!(
        r.resolve_s2s("nope.test").await,
        Err(ResolveError::ServiceUnavailable("nope.test".into()))
    );
}

fn parse_err(text: &str) -> (Option<usize>, String) {
    let e = parse_zone_file(text, "z.toml").unwrap_err();
    assert!(e.to_string().starts_with("z.toml:"), "{e}");
    (e.line, e.message)
}

#[test]
fn zone_file_errors_carry_the_line() {
    let unknown_key =
        "[[zone]]\norigin = \"a.test\"\n\n[[zone.a]]\nname = \"a.test\"\nadress = \"127.0.0.1\"\n";
    let (line, msg) = parse_err(unknown_key);
    assert_eq!(line, Some(6), "{msg}");
    assert!(msg.contains("adress"), "{msg}");

    let bad_addr =
        "[[zone]]\norigin = \"a.test\"\n[[zone.a]]\nname = \"a.test\"\naddress = \"127.0.0.300\"\n";
    let (line, msg) = parse_err(bad_addr);
    assert_eq!(line, Some(5), "{msg}");
    assert!(msg.contains("127.0.0.300"), "{msg}");

    let public = "[[zone]]\norigin = \"a.test\"\n[[zone.aaaa]]\nname = \"a.test\"\naddress = \"2001:db8::1\"\n";
    let (line, msg) = parse_err(public);
    assert_eq!(line, Some(5));
    assert!(msg.contains("loopback"), "{msg}");

    let wrong_family =
        "[[zone]]\norigin = \"a.test\"\n[[zone.a]]\nname = \"a.test\"\naddress = \"::1\"\n";
    assert_eq!(parse_err(wrong_family).0, Some(5));

    let bad_name = "[[zone]]\norigin = \"a.test\"\n[[zone.cname]]\nname = \"x..a.test\"\ntarget = \"a.test\"\n";
    assert_eq!(parse_err(bad_name).0, Some(4));

    let outside =
        "[[zone]]\norigin = \"a.test\"\n[[zone.a]]\nname = \"b.test\"\naddress = \"127.0.0.1\"\n";
    let (line, msg) = parse_err(outside);
    assert_eq!(line, Some(4));
    assert!(msg.contains("outside"), "{msg}");

    let bad_service = "[[zone]]\norigin = \"a.test\"\n[[zone.srv]]\nservice = \"xmpp-client\"\npriority = 0\nweight = 0\nport = 1\ntarget = \"a.test\"\n";
    assert_eq!(parse_err(bad_service).0, Some(4));

    let bad_port = "[[zone]]\norigin = \"a.test\"\n[[zone.srv]]\nservice = \"xmpp-server\"\npriority = 0\nweight = 0\nport = 70000\ntarget = \"a.test\"\n";
    assert_eq!(parse_err(bad_port).0, Some(7));

    let twice = "[[zone]]\norigin = \"a.test\"\n[[zone]]\norigin = \"A.test.\"\n";
    assert_eq!(parse_err(twice).0, Some(4));

    let syntax = "[[zone]]\norigin = \"a.test\n";
    assert_eq!(parse_err(syntax).0, Some(2));

    assert!(parse_err("").1.contains("no [[zone]]"));
}
