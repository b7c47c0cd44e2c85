//! Tests of the XMPP stream codec: reading at every split point, writing,
//! restricted XML, limits, reset/release and robustness against garbage.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use proptest::prelude::*;
use s2spec::xml::{
    Element, Event, Limits, NS_DIALBACK, NS_SASL, NS_SERVER, NS_STREAMS, NS_TLS, Node, NsContext,
    ReadError, ReleaseError, StreamHeader, XmlError, spawn_reader, stream_error,
};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

const T: Duration = Duration::from_secs(5);

/// An `AsyncRead` that delivers exactly the given chunks, one per read, with a
/// `Pending` in between, so chunk boundaries are real boundaries for the parser.
struct Chunks {
    chunks: VecDeque<Vec<u8>>,
    yield_next: bool,
}

impl Chunks {
    fn new(chunks: Vec<Vec<u8>>) -> Self {
        Chunks {
            chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
            yield_next: false,
        }
    }
    fn split(data: &[u8], at: &[usize]) -> Self {
        let mut out = Vec::new();
        let mut start = 0;
        for &i in at {
            out.push(data[start..i].to_vec());
            start = i;
        }
        out.push(data[start..].to_vec());
        Chunks::new(out)
    }
}

impl AsyncRead for Chunks {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.yield_next {
            self.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(front) = self.chunks.front_mut() {
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.drain(..n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            self.yield_next = true;
        }
        Poll::Ready(Ok(()))
    }
}

/// Reads events until Eof or an error (at most `cap`); a reader-task panic would
/// surface as `ReadError::Closed`, which callers assert never happens.
async fn collect<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    limits: Limits,
    cap: usize,
) -> Vec<Result<Event, ReadError>> {
    let mut h = spawn_reader(r, limits);
    let mut out = Vec::new();
    for _ in 0..cap {
        let ev = h.next(T).await;
        let stop = !matches!(
            ev,
            Ok(Event::Header(_) | Event::Element(_) | Event::Whitespace | Event::End)
        );
        out.push(ev);
        if stop {
            break;
        }
    }
    out
}

async fn parse_all(data: &[u8]) -> Vec<Result<Event, ReadError>> {
    collect(Chunks::new(vec![data.to_vec()]), Limits::default(), 1000).await
}

/// The first error, if any.
async fn first_error(data: &[u8], limits: Limits) -> XmlError {
    let evs = collect(Chunks::new(vec![data.to_vec()]), limits, 1000).await;
    match evs.last() {
        Some(Err(ReadError::Xml(e))) => e.clone(),
        other => panic!("expected an XML error, got {other:?} after {evs:?}"),
    }
}

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
    xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
    from='a.example' to='b.example' id='s1' version='1.0' xml:lang='en'>";

fn transcript() -> String {
    format!(
        "{HEADER}\
<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>\
 \n <starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>\
<db:result from='a.example' to='b.example'>0123abcd</db:result>\
<message from='u@a.example' to='v@b.example' type='chat' xml:lang='de'>\
<body>Fish &amp; chips &lt;3 &#x263A;&#65; &quot;q&apos; &gt; é</body>\
<x xmlns='urn:x'><y a='1 &amp; 2 &lt; &#x33;'>t<![CDATA[<raw>&amp;]]>u</y><p:z xmlns:p='urn:p' p:k='v'/></x>\
</message>\n\n\t\
<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>   \
</stream:stream>"
    )
}

fn unwrap_events(evs: Vec<Result<Event, ReadError>>) -> Vec<Event> {
    evs.into_iter()
        .map(|e| e.unwrap_or_else(|err| panic!("unexpected error {err:?}")))
        .collect()
}

/// Keep-alives are delivered as they arrive, so a whitespace run split by the
/// network may be several events; everything else must be identical.
fn collapse_whitespace(evs: Vec<Event>) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::with_capacity(evs.len());
    for ev in evs {
        if ev == Event::Whitespace && out.last() == Some(&Event::Whitespace) {
            continue;
        }
        out.push(ev);
    }
    out
}

#[tokio::test]
async fn transcript_parses_as_expected() {
    let evs = unwrap_events(parse_all(transcript().as_bytes()).await);
    let Event::Header(h) = &evs[0] else {
        panic!("no header: {evs:?}")
    };
    assert_eq!(h.from.as_deref(), Some("a.example"));
    assert_eq!(h.to.as_deref(), Some("b.example"));
    assert_eq!(h.id.as_deref(), Some("s1"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    assert_eq!(h.lang.as_deref(), Some("en"));
    assert_eq!(h.default_ns, NS_SERVER);
    assert!(h.stream_ns_ok);
    assert_eq!(h.prefix_ns("db"), Some(NS_DIALBACK));
    assert_eq!(h.prefix_ns("stream"), Some(NS_STREAMS));
    assert_eq!(h.attrs.len(), 8);

    let elements: Vec<&Element> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Element(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(elements.len(), 5);
    let features = elements[0];
    assert!(features.is(NS_STREAMS, "features"));
    let starttls = features
        .child(NS_TLS, "starttls")
        .expect("starttls feature");
    assert!(starttls.child(NS_TLS, "required").is_some());
    assert!(
        features
            .child("urn:xmpp:features:dialback", "dialback")
            .and_then(|d| d.child("urn:xmpp:features:dialback", "errors"))
            .is_some()
    );
    assert!(elements[1].is(NS_TLS, "starttls"));
    let result = elements[2];
    assert!(result.is(NS_DIALBACK, "result"));
    assert_eq!(result.attr("from"), Some("a.example"));
    assert_eq!(result.text(), "0123abcd");

    let msg = elements[3];
    assert!(msg.is(NS_SERVER, "message"));
    assert_eq!(msg.attr("xml:lang"), Some("de"));
    assert_eq!(
        msg.child(NS_SERVER, "body").map(Element::text).as_deref(),
        Some("Fish & chips <3 \u{263A}A \"q' > é")
    );
    let y = msg
        .child("urn:x", "x")
        .and_then(|x| x.child("urn:x", "y"))
        .expect("y");
    assert_eq!(y.attr("a"), Some("1 & 2 < 3"));
    // CDATA and text merge into one node, whatever the chunking.
    assert_eq!(y.children, vec![Node::Text("t<raw>&amp;u".into())]);
    let z = msg
        .child("urn:x", "x")
        .and_then(|x| x.child("urn:p", "z"))
        .expect("prefixed z");
    assert_eq!(z.attrs, vec![("p:k".to_string(), "v".to_string())]);
    assert!(elements[4].is(NS_SERVER, "iq"));

    let kinds: Vec<&str> = evs
        .iter()
        .map(|e| match e {
            Event::Header(_) => "H",
            Event::Element(_) => "E",
            Event::Whitespace => "W",
            Event::End => "/",
            Event::Eof => "$",
        })
        .collect();
    assert_eq!(kinds.concat(), "HEWEEEWEW/$");
}

#[tokio::test]
async fn every_two_chunk_split_parses_identically() {
    let data = transcript().into_bytes();
    let expected = collapse_whitespace(unwrap_events(parse_all(&data).await));
    for at in 1..data.len() {
        let got = collect(Chunks::split(&data, &[at]), Limits::default(), 100).await;
        assert_eq!(
            collapse_whitespace(unwrap_events(got)),
            expected,
            "split at byte {at}"
        );
    }
}

#[tokio::test]
async fn byte_by_byte_and_random_splits_parse_identically() {
    let data = transcript().into_bytes();
    let expected = collapse_whitespace(unwrap_events(parse_all(&data).await));
    let ones: Vec<usize> = (1..data.len()).collect();
    let got = collect(Chunks::split(&data, &ones), Limits::default(), 100).await;
    assert_eq!(
        collapse_whitespace(unwrap_events(got)),
        expected,
        "byte by byte"
    );

    // A small deterministic PRNG keeps the test reproducible.
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut rand = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..200 {
        let k = 2 + rand(12);
        let mut cuts: Vec<usize> = (0..k).map(|_| 1 + rand(data.len() - 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let got = collect(Chunks::split(&data, &cuts), Limits::default(), 100).await;
        assert_eq!(
            collapse_whitespace(unwrap_events(got)),
            expected,
            "round {round}, cuts {cuts:?}"
        );
    }
}

#[tokio::test]
async fn duplex_transport_with_delayed_writes() {
    let data = transcript().into_bytes();
    let expected = collapse_whitespace(unwrap_events(parse_all(&data).await));
    let (mut w, r) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(37) {
            w.write_all(chunk).await?;
            tokio::task::yield_now().await;
        }
        w.shutdown().await
    });
    let got = collect(r, Limits::default(), 100).await;
    writer.await.expect("writer task").expect("writes");
    assert_eq!(collapse_whitespace(unwrap_events(got)), expected);
}

fn tricky_element() -> Element {
    Element::new(NS_SERVER, "message")
        .with_attr("to", "o'neil@b.example")
        .with_attr("id", "a\"b<c>&d\te\nf\rg")
        .with_attr("xml:lang", "en")
        .with_child(
            Element::new(NS_SERVER, "body").with_text("1 < 2 && 3 > 2 ]]> 'q' \"d\" \r\n end"),
        )
        .with_child(
            Element::new(NS_DIALBACK, "result")
                .with_attr("type", "valid")
                .with_text("key"),
        )
        .with_child(
            Element::new("urn:x", "x")
                .with_child(Element::new("urn:x", "inner").with_text("é ☺ \u{10348}"))
                .with_child(Element::new(NS_SERVER, "back-to-default"))
                .with_child(Element::new("", "no-namespace")),
        )
}

#[tokio::test]
async fn write_then_read_round_trips() {
    let header = StreamHeader::server()
        .with_from("a.example")
        .with_to("b.example")
        .with_id("x'<&")
        .with_lang("en");
    let ctx = header.sent_ns_context();
    let el = tricky_element();
    let xml = el.to_xml(&ctx);
    // The header declared `db`, so dialback uses the prefix, not a fresh xmlns.
    assert!(
        xml.contains("<db:result type='valid'>key</db:result>"),
        "{xml}"
    );
    assert!(
        xml.starts_with("<message to='o&apos;neil@b.example'"),
        "{xml}"
    );
    assert!(!xml.contains("]]>"), "{xml}");

    let wire = format!("{}{xml}</stream:stream>", header.to_xml());
    let evs = unwrap_events(parse_all(wire.as_bytes()).await);
    let Event::Header(h) = &evs[0] else { panic!() };
    assert_eq!(h.id.as_deref(), Some("x'<&"));
    assert_eq!(h.from.as_deref(), Some("a.example"));
    assert_eq!(evs[1], Event::Element(el.clone()));
    assert_eq!(&evs[2..], &[Event::End, Event::Eof]);

    // The synchronous parser agrees, in the same context.
    assert_eq!(
        Element::parse_in(&xml, &ctx, Limits::default()),
        Ok(el.clone())
    );
    // And without context every namespace is explicit.
    assert_eq!(Element::parse(&el.to_string()), Ok(el));
}

#[test]
fn header_and_stream_error_serialisation() {
    let h = StreamHeader::server()
        .with_from("a.example")
        .with_to("b.example")
        .with_id("abc");
    assert_eq!(
        h.to_xml(),
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
         from='a.example' to='b.example' id='abc' version='1.0'>"
    );
    let bare = StreamHeader {
        default_ns: NS_SERVER.into(),
        ..StreamHeader::default()
    };
    assert_eq!(
        bare.to_xml(),
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams'>"
    );
    let ctx = h.sent_ns_context();
    assert_eq!(
        stream_error("restricted-xml", None).to_xml(&ctx),
        "<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    );
    assert_eq!(
        stream_error("policy-violation", Some("too <big>")).to_xml(&ctx),
        "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too &lt;big&gt;</text></stream:error>"
    );
    let parsed = Element::parse_in(
        &stream_error("host-unknown", Some("x")).to_xml(&ctx),
        &ctx,
        Limits::default(),
    )
    .expect("parse");
    assert_eq!(
        s2spec::xml::header::stream_error_condition(&parsed),
        Some("host-unknown")
    );
}

#[test]
fn element_helpers() {
    let e = Element::new("urn:a", "a")
        .with_attr("k", "1")
        .with_attr("k", "2")
        .with_text("x")
        .with_text("y")
        .with_child(Element::new("urn:b", "b"))
        .with_text("z");
    assert_eq!(e.attr("k"), Some("2"));
    assert_eq!(e.attrs.len(), 1);
    assert_eq!(e.text(), "xyz");
    assert_eq!(e.children.len(), 3);
    assert!(e.child("urn:b", "b").is_some());
    assert!(e.child("urn:a", "b").is_none());
    assert_eq!(e.children_elements().count(), 1);
    assert!(e.is("urn:a", "a"));
    assert_eq!(
        e.to_xml(&NsContext::with_default("urn:a")),
        "<a k='2'>xy<b xmlns='urn:b'/>z</a>"
    );
}

fn in_stream(body: &str) -> Vec<u8> {
    format!("{HEADER}{body}").into_bytes()
}

#[tokio::test]
async fn restricted_xml_constructs_are_rejected() {
    let cases: &[(&str, Vec<u8>)] = &[
        (
            "DTD",
            b"<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]><stream:stream/>"
                .to_vec(),
        ),
        ("comment at top level", in_stream("<!-- hello -->")),
        (
            "comment in stanza",
            in_stream("<message><!-- hello --></message>"),
        ),
        ("PI", in_stream("<message><?php echo 1 ?></message>")),
        (
            "PI before header",
            b"<?xml version='1.0'?><?xml-stylesheet href='a'?>".to_vec(),
        ),
        (
            "XML declaration mid-stream",
            in_stream("<?xml version='1.0'?>"),
        ),
        (
            "entity in text",
            in_stream("<message><body>&foo;</body></message>"),
        ),
        ("entity in attribute", in_stream("<message to='&foo;'/>")),
    ];
    for (what, data) in cases {
        let err = first_error(data, Limits::default()).await;
        assert!(matches!(err, XmlError::RestrictedXml(_)), "{what}: {err:?}");
        assert_eq!(err.condition(), "restricted-xml", "{what}");
    }
    for frag in [
        "<a><!-- c --></a>",
        "<a><?pi x?></a>",
        "<a>&foo;</a>",
        "<a b='&foo;'/>",
        "<!DOCTYPE a><a/>",
    ] {
        let err = Element::parse(frag).expect_err(frag);
        assert_eq!(err.condition(), "restricted-xml", "{frag}: {err:?}");
    }
}

#[tokio::test]
async fn declaration_at_start_is_allowed_and_optional() {
    let without = HEADER.trim_start_matches("<?xml version='1.0'?>");
    for start in [
        HEADER.to_string(),
        without.to_string(),
        format!("\u{FEFF}{HEADER}"),
    ] {
        let evs = unwrap_events(parse_all(format!("{start}<a/></stream:stream>").as_bytes()).await);
        assert!(matches!(evs[0], Event::Header(_)), "{start}: {evs:?}");
        assert_eq!(evs.len(), 4);
    }
    let err = first_error(
        b"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream/>",
        Limits::default(),
    )
    .await;
    assert_eq!(err.condition(), "unsupported-encoding");
}

#[tokio::test]
async fn malformed_xml_is_not_well_formed() {
    for body in [
        "<message></iq>",
        "<message a='1' a='2'/>",
        "<message a=1/>",
        "<message>\u{1}</message>",
        "<message>&#0;</message>",
        "<message>&#x1;</message>",
        "<message>a & b</message>",
        "</stream:stream><more/>",
    ] {
        let err = first_error(&in_stream(body), Limits::default()).await;
        assert_eq!(err.condition(), "not-well-formed", "{body}: {err:?}");
    }
    let mut bad_utf8 = in_stream("<message><body>");
    bad_utf8.extend_from_slice(&[0xff, 0xfe, b'<']);
    let err = first_error(&bad_utf8, Limits::default()).await;
    assert_eq!(err.condition(), "unsupported-encoding", "{err:?}");

    let err = first_error(&in_stream("hello<message/>"), Limits::default()).await;
    assert_eq!(err.condition(), "bad-format", "{err:?}");
}

#[tokio::test]
async fn errors_are_sticky() {
    let mut h = spawn_reader(
        Chunks::new(vec![in_stream("<!-- x --><a/>")]),
        Limits::default(),
    );
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    let first = h.next(T).await;
    assert!(matches!(
        first,
        Err(ReadError::Xml(XmlError::RestrictedXml(_)))
    ));
    assert_eq!(h.next(T).await, first);
}

#[tokio::test]
async fn bad_prefixes_and_wrong_stream_namespace() {
    for body in [
        "<foo:bar/>",
        "<message foo:x='1'/>",
        "<message><x:y/></message>",
    ] {
        let err = first_error(&in_stream(body), Limits::default()).await;
        assert!(
            matches!(err, XmlError::BadNamespacePrefix(_)),
            "{body}: {err:?}"
        );
        assert_eq!(err.condition(), "bad-namespace-prefix");
    }
    assert_eq!(
        Element::parse("<a:b/>").map_err(|e| e.condition()),
        Err("bad-namespace-prefix")
    );

    for header in [
        "<stream:stream xmlns='jabber:server' xmlns:stream='urn:wrong'>",
        "<stream xmlns='jabber:server'>",
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>",
    ] {
        let err = first_error(header.as_bytes(), Limits::default()).await;
        assert!(
            matches!(err, XmlError::InvalidNamespace(_)),
            "{header}: {err:?}"
        );
        assert_eq!(err.condition(), "invalid-namespace");
    }
    // Another prefix for the right namespace is legal but flagged.
    let evs =
        parse_all(b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server'>")
            .await;
    match &evs[0] {
        Ok(Event::Header(h)) => assert!(!h.stream_ns_ok),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn size_and_depth_limits() {
    let limits = Limits {
        max_stanza_bytes: 1024,
        max_depth: 8,
    };
    // Just under the limit is fine, one byte over is not.
    let open = "<message><body>";
    let close = "</body></message>";
    let fill = |n: usize| "x".repeat(n - open.len() - close.len());
    let ok = format!("{open}{}{close}", fill(1024));
    let evs = collect(Chunks::new(vec![in_stream(&ok)]), limits, 10).await;
    assert!(matches!(evs[1], Ok(Event::Element(_))), "{evs:?}");
    let too_big = format!("{open}{}{close}", fill(1025));
    let err = first_error(&in_stream(&too_big), limits).await;
    assert!(matches!(err, XmlError::PolicyViolation(_)), "{err:?}");
    assert_eq!(err.condition(), "policy-violation");

    let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
    let evs = collect(Chunks::new(vec![in_stream(&deep(8))]), limits, 10).await;
    assert!(matches!(evs[1], Ok(Event::Element(_))), "{evs:?}");
    let err = first_error(&in_stream(&deep(9)), limits).await;
    assert_eq!(err.condition(), "policy-violation", "{err:?}");
    let err = first_error(
        &in_stream("<a><a><a><a><a><a><a><a><b/></a></a></a></a></a></a></a></a>"),
        limits,
    )
    .await;
    assert_eq!(err.condition(), "policy-violation", "{err:?}");
    assert_eq!(
        Element::parse_in(&deep(9), &NsContext::default(), limits).map_err(|e| e.condition()),
        Err("policy-violation")
    );
    assert_eq!(Element::parse(&deep(64)).map(|_| ()), Ok(()));
    assert_eq!(
        Element::parse(&deep(65)).map_err(|e| e.condition()),
        Err("policy-violation")
    );
}

/// A peer that never stops sending one text run: the limit must fire while
/// the bytes stream in, not after buffering them all.
struct Endless {
    prefix: Vec<u8>,
    sent: usize,
}

impl AsyncRead for Endless {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = buf.remaining();
        let prefix_left = self.prefix.len().saturating_sub(self.sent);
        if prefix_left > 0 {
            let k = prefix_left.min(n);
            let start = self.sent;
            buf.put_slice(&self.prefix[start..start + k]);
            self.sent += k;
        } else {
            buf.put_slice(&vec![b'a'; n]);
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn oversized_stanza_is_detected_while_streaming() {
    for body in ["<message><body>", "<message to='", "   "] {
        let r = Endless {
            prefix: in_stream(body),
            sent: 0,
        };
        let mut h = spawn_reader(r, Limits::default());
        assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
        let mut ev = h.next(T).await;
        if ev == Ok(Event::Whitespace) {
            ev = h.next(T).await;
        }
        assert!(
            matches!(&ev, Err(ReadError::Xml(XmlError::PolicyViolation(_)))),
            "{body}: {ev:?}"
        );
    }
}

#[tokio::test]
async fn eof_mid_stanza_and_before_header() {
    let evs = unwrap_events(parse_all(&in_stream("<message><body>hel")).await);
    assert!(
        matches!(evs.as_slice(), [Event::Header(_), Event::Eof]),
        "{evs:?}"
    );
    let evs = unwrap_events(parse_all(&in_stream("<message>a &am")).await);
    assert!(
        matches!(evs.as_slice(), [Event::Header(_), Event::Eof]),
        "{evs:?}"
    );
    let evs = unwrap_events(parse_all(&in_stream("<message><bo")).await);
    assert!(
        matches!(evs.as_slice(), [Event::Header(_), Event::Eof]),
        "{evs:?}"
    );
    assert_eq!(unwrap_events(parse_all(b"").await), vec![Event::Eof]);
    let evs = unwrap_events(
        parse_all(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>").await,
    );
    assert!(
        matches!(evs.as_slice(), [Event::Header(_), Event::End, Event::Eof]),
        "{evs:?}"
    );
}

#[tokio::test]
async fn reset_keeps_buffered_bytes_for_the_new_stream() {
    let second = StreamHeader::server().with_from("b.example").with_id("s2");
    let data = format!(
        "{HEADER}<success xmlns='{NS_SASL}'/>{}<stream:features/>",
        second.to_xml()
    );
    // Everything arrives in one read, so the second header is already
    // buffered when the first stream is reset.
    let mut h = spawn_reader(Chunks::new(vec![data.into_bytes()]), Limits::default());
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    match h.next(T).await {
        Ok(Event::Element(e)) => assert!(e.is(NS_SASL, "success")),
        other => panic!("{other:?}"),
    }
    h.reset().expect("reset");
    match h.next(T).await {
        Ok(Event::Header(hd)) => assert_eq!(hd.id.as_deref(), Some("s2")),
        other => panic!("{other:?}"),
    }
    match h.next(T).await {
        Ok(Event::Element(e)) => assert!(e.is(NS_STREAMS, "features")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn release_returns_exactly_the_bytes_after_the_element() {
    let tail: &[u8] = b"<message>injected</message>\x16\x03\x01garbage";
    let mut data = in_stream(&format!("<proceed xmlns='{NS_TLS}'/>"));
    data.extend_from_slice(tail);
    let mut h = spawn_reader(Chunks::new(vec![data]), Limits::default());
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    assert!(matches!(h.next(T).await, Ok(Event::Element(e)) if e.is(NS_TLS, "proceed")));
    let released = h.release().await.expect("release");
    assert_eq!(released.buffered, tail);

    // After a whitespace keep-alive the next `<` must not have been swallowed.
    let data = in_stream("<a/>  <b/>");
    let mut h = spawn_reader(Chunks::new(vec![data]), Limits::default());
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    assert!(matches!(h.next(T).await, Ok(Event::Element(_))));
    assert_eq!(h.next(T).await, Ok(Event::Whitespace));
    let released = h.release().await.expect("release");
    assert_eq!(released.buffered, b"<b/>");
}

#[tokio::test]
async fn release_over_duplex_hands_back_a_usable_transport() {
    let (mut w, r) = tokio::io::duplex(1024);
    let mut h = spawn_reader(r, Limits::default());
    w.write_all(&in_stream(&format!("<proceed xmlns='{NS_TLS}'/>pipelined")))
        .await
        .expect("write");
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    assert!(matches!(h.next(T).await, Ok(Event::Element(_))));
    let released = h.release().await.expect("release");
    assert_eq!(released.buffered, b"pipelined");
    let mut r = released.reader;
    w.write_all(b"later").await.expect("write");
    let mut buf = [0u8; 5];
    tokio::io::AsyncReadExt::read_exact(&mut r, &mut buf)
        .await
        .expect("read");
    assert_eq!(&buf, b"later");
}

#[tokio::test]
async fn timeout_loses_nothing_and_blocks_reset_and_release() {
    let (mut w, r) = tokio::io::duplex(1024);
    let mut h = spawn_reader(r, Limits::default());
    let header = HEADER.as_bytes();
    w.write_all(&header[..20]).await.expect("write");
    assert_eq!(
        h.next(Duration::from_millis(50)).await,
        Err(ReadError::Timeout)
    );
    assert_eq!(h.reset(), Err(ReadError::Busy));
    let mut h = match h.release().await {
        Err(ReleaseError::Busy(h)) => h,
        other => panic!("{other:?}"),
    };
    w.write_all(&header[20..]).await.expect("write");
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    assert_eq!(
        h.next(Duration::from_millis(20)).await,
        Err(ReadError::Timeout)
    );
    w.write_all(b"<a/>").await.expect("write");
    assert!(matches!(h.next(T).await, Ok(Event::Element(e)) if e.name == "a"));
}

/// Feeds `data` (split at `cuts`) and checks the reader ends in an event or
/// error, never a panic (a panicking reader task shows up as `Closed`).
fn never_panics(data: Vec<u8>, cuts: Vec<usize>, limits: Limits) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cuts: Vec<usize> = cuts
        .into_iter()
        .filter(|&c| c > 0 && c < data.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let cap = data.len() + 4;
    let evs = rt.block_on(collect(Chunks::split(&data, &cuts), limits, cap));
    prop_assert!(!evs.is_empty());
    prop_assert!(evs.len() < cap, "no progress: {} events", evs.len());
    for ev in &evs {
        prop_assert!(
            !matches!(ev, Err(ReadError::Closed | ReadError::Timeout)),
            "reader task died or stalled: {:?}",
            ev
        );
    }
    if let Ok(s) = std::str::from_utf8(&data) {
        let _ = Element::parse(s);
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                prop::sample::select(vec![
                    b"<".to_vec(),
                    b">".to_vec(),
                    b"</".to_vec(),
                    b"/>".to_vec(),
                    b"&".to_vec(),
                    b"&amp;".to_vec(),
                    b"&#x0;".to_vec(),
                    b"<!--".to_vec(),
                    b"<?".to_vec(),
                    b"<![CDATA[".to_vec(),
                    b"xmlns:x='y'".to_vec(),
                    b"'".to_vec(),
                    b"<a:b>".to_vec(),
                    b"</stream:stream>".to_vec(),
                ]),
            ]
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    match m {
        Mutation::Replace(i, b) => {
            let i = i % data.len();
            data[i] = *b;
        }
        Mutation::Insert(i, v) => {
            let i = i % (data.len() + 1);
            data.splice(i..i, v.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = i % data.len();
            let end = (i + n).min(data.len());
            data.drain(i..end);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let cuts = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        never_panics(data.clone(), cuts, Limits::default())?;
        // Also after a valid header, so the stanza paths are exercised.
        let mut prefixed = HEADER.as_bytes().to_vec();
        prefixed.extend_from_slice(&data);
        never_panics(prefixed, vec![], Limits { max_stanza_bytes: 200, max_depth: 4 })?;
    }

    #[test]
    fn mutated_transcripts_never_panic(
        mutations in prop::collection::vec(mutation(), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let mut data = transcript().into_bytes();
        for m in &mutations {
            apply(&mut data, m);
        }
        let cuts = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        never_panics(data, cuts, Limits::default())?;
    }

    #[test]
    fn random_strings_never_panic_the_fragment_parser(s in "\\PC{0,64}|<[a-z:]{1,5}( [a-z:]{1,4}='[^']{0,5}')*>[^<]{0,10}</[a-z:]{1,5}>") {
        let _ = Element::parse(&s);
    }
}

/// An endless run of whitespace is delivered as keep-alives, never buffered.
#[tokio::test]
async fn endless_whitespace_is_streamed_not_buffered() {
    // 1 MiB of spaces after the header: four times the default stanza limit
    // and a thousand times the one used here.
    let mut prefix = in_stream("");
    prefix.extend(std::iter::repeat_n(b' ', 1 << 20));
    let r = Endless { prefix, sent: 0 };
    let mut h = spawn_reader(
        r,
        Limits {
            max_stanza_bytes: 1024,
            max_depth: 8,
        },
    );
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    for _ in 0..300 {
        assert_eq!(h.next(T).await, Ok(Event::Whitespace));
    }
}

#[tokio::test]
async fn keep_alives_are_delivered_promptly() {
    let (mut w, r) = tokio::io::duplex(1024);
    let mut h = spawn_reader(r, Limits::default());
    w.write_all(&in_stream("<a/> ")).await.expect("write");
    assert!(matches!(h.next(T).await, Ok(Event::Header(_))));
    assert!(matches!(h.next(T).await, Ok(Event::Element(_))));
    // No `<` has followed the space yet, and still the keep-alive is seen.
    assert_eq!(h.next(T).await, Ok(Event::Whitespace));
    w.write_all(b"\n").await.expect("write");
    assert_eq!(h.next(T).await, Ok(Event::Whitespace));
    assert_eq!(
        h.next(Duration::from_millis(20)).await,
        Err(ReadError::Timeout)
    );
    w.write_all(b"\t<b/>").await.expect("write");
    assert_eq!(h.next(T).await, Ok(Event::Whitespace));
    assert!(matches!(h.next(T).await, Ok(Event::Element(e)) if e.name == "b"));
    // Text that merely starts with whitespace is still rejected.
    w.write_all(b" oops<c/>").await.expect("write");
    assert_eq!(h.next(T).await, Ok(Event::Whitespace));
    assert!(matches!(
        h.next(T).await,
        Err(ReadError::Xml(XmlError::BadFormat(_)))
    ));
}
