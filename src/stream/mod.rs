//! One XMPP stream over TCP or TLS, for both the simulated peers and the
//! reference proxy.
//!
//! [`XmppStream`] is the `Connection` of this crate (in the mini-redis sense):
//! it owns the socket, the reader task and the write half, and offers
//! *mechanisms* — send a header or an element, wait for the next event with a
//! deadline, restart the stream, upgrade to TLS — while deciding no protocol
//! policy. Every byte it sends and every event it receives is recorded in a
//! shared [`Transcript`], so a test case can show exactly what happened on the
//! wire.

mod conn;
mod replay;
mod transcript;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use crate::xml::header::STREAM_END;
use crate::xml::{
    Element, Event, Limits, NsContext, ReadError, ReaderHandle, ReleaseError, StreamHeader,
    spawn_reader, stream_error,
};

pub use conn::Conn;
use replay::Prefixed;
pub use transcript::{Dir, Entry, EntryKind, Transcript};

/// What was negotiated by a TLS handshake, captured when it completed (the
/// session is not reachable afterwards because the connection is split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3`, `TLSv1_2`.
    pub version: Option<rustls::ProtocolVersion>,
    pub cipher_suite: Option<rustls::CipherSuite>,
    /// The peer's chain, end entity first (`None` when a client sent none).
    pub peer_certificates: Option<Vec<CertificateDer<'static>>>,
    /// The ALPN protocol agreed on (`xmpp-server` for XEP-0368 direct TLS).
    pub alpn: Option<Vec<u8>>,
    /// The SNI the client sent (server side only).
    pub sni: Option<String>,
}

/// Failures of stream operations other than reading (reading returns [`ReadError`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamError {
    /// The socket failed or was closed while writing or connecting.
    #[error("I/O: {0}")]
    Io(String),
    /// The TLS handshake failed; `rustls` holds the precise reason when
    /// rustls produced one (e.g. an invalid peer certificate).
    #[error("TLS handshake failed: {detail}")]
    Tls {
        detail: String,
        rustls: Option<rustls::Error>,
    },
    /// STARTTLS on a stream that is already encrypted.
    #[error("stream is already using TLS")]
    AlreadyTls,
    /// STARTTLS while a timed-out read is outstanding: the bytes it will
    /// consume are unknown, so the upgrade would not be safe.
    #[error("a read is still outstanding")]
    Busy,
    /// The stream was closed, or broken by a failed upgrade.
    #[error("stream closed")]
    Closed,
}

impl StreamError {
    fn io(e: std::io::Error) -> StreamError {
        StreamError::Io(e.to_string())
    }

    fn tls(e: std::io::Error) -> StreamError {
        let rustls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        StreamError::Tls {
            detail: e.to_string(),
            rustls,
        }
    }
}

/// One XMPP stream (and its restarts) on one connection.
pub struct XmppStream {
    /// `None` only after the stream broke during a TLS upgrade.
    reader: Option<ReaderHandle<Prefixed<ReadHalf<Conn>>>>,
    writer: Option<WriteHalf<Conn>>,
    limits: Limits,
    tls: Option<TlsInfo>,
    transcript: Transcript,
    stream_no: u32,
    /// Namespace context of the header we sent: how our elements are written.
    sent_ctx: NsContext,
    /// Namespace context of the header we received: how received elements are
    /// shown in the transcript.
    recv_ctx: NsContext,
    peer_header: Option<StreamHeader>,
    /// Whether the current read error has been recorded (errors are sticky).
    error_recorded: bool,
    local_addr: Option<SocketAddr>,
    peer_addr: Option<SocketAddr>,
}

impl XmppStream {
    /// Wraps an established connection (plain TCP or already TLS).
    pub fn new(conn: Conn, limits: Limits, transcript: Transcript, stream_no: u32) -> XmppStream {
        let (local_addr, peer_addr) = (conn.local_addr(), conn.peer_addr());
        let tls = conn.tls_info();
        let mut s = XmppStream {
            reader: None,
            writer: None,
            limits,
            tls,
            transcript,
            stream_no,
            sent_ctx: NsContext::default(),
            recv_ctx: NsContext::default(),
            peer_header: None,
            error_recorded: false,
            local_addr,
            peer_addr,
        };
        s.attach(conn, Vec::new());
        s
    }

    /// Wraps a plain TCP connection.
    pub fn plain(tcp: TcpStream, limits: Limits, transcript: Transcript, stream_no: u32) -> Self {
        no_delay(&tcp);
        Self::new(Conn::Plain(tcp), limits, transcript, stream_no)
    }

    /// Connects over plain TCP (port 5269 style; STARTTLS may follow).
    pub async fn connect(
        addr: SocketAddr,
        limits: Limits,
        transcript: Transcript,
        stream_no: u32,
    ) -> Result<XmppStream, StreamError> {
        let tcp = TcpStream::connect(addr).await.map_err(StreamError::io)?;
        let s = Self::plain(tcp, limits, transcript, stream_no);
        s.note(Dir::Sent, format!("connected to {addr}"));
        Ok(s)
    }

    /// Connects and performs the TLS handshake first (XEP-0368 direct TLS;
    /// the ALPN protocol, normally `xmpp-server`, comes from `config`).
    pub async fn connect_direct_tls(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        limits: Limits,
        transcript: Transcript,
        stream_no: u32,
    ) -> Result<XmppStream, StreamError> {
        let tcp = TcpStream::connect(addr).await.map_err(StreamError::io)?;
        no_delay(&tcp);
        let conn = conn::tls_connect(tcp, config, server_name)
            .await
            .map_err(StreamError::tls)?;
        let s = Self::new(conn, limits, transcript, stream_no);
        s.note(Dir::Sent, format!("connected to {addr} with direct TLS"));
        s.note_handshake();
        Ok(s)
    }

    /// Accepts direct TLS on an accepted TCP connection (XEP-0368).
    pub async fn accept_direct_tls(
        tcp: TcpStream,
        config: Arc<rustls::ServerConfig>,
        limits: Limits,
        transcript: Transcript,
        stream_no: u32,
    ) -> Result<XmppStream, StreamError> {
        no_delay(&tcp);
        let conn = conn::tls_accept(tcp, config)
            .await
            .map_err(StreamError::tls)?;
        let s = Self::new(conn, limits, transcript, stream_no);
        s.note_handshake();
        Ok(s)
    }

    fn attach(&mut self, conn: Conn, replay: Vec<u8>) {
        let (r, w) = tokio::io::split(conn);
        self.reader = Some(spawn_reader(Prefixed::new(replay, r), self.limits));
        self.writer = Some(w);
        self.error_recorded = false;
    }

    // ----- sending -------------------------------------------------------

    /// Sends a stream header; elements sent afterwards use its namespaces
    /// (e.g. `db:` for dialback when it declares `xmlns:db`).
    pub async fn send_header(&mut self, header: &StreamHeader) -> Result<(), StreamError> {
        let text = header.to_xml();
        self.write(text.as_bytes()).await?;
        self.sent_ctx = header.sent_ns_context();
        self.record(Dir::Sent, EntryKind::Xml, text);
        Ok(())
    }

    /// Sends one element, serialised in the context of the header we sent.
    pub async fn send(&mut self, element: &Element) -> Result<(), StreamError> {
        let text = element.to_xml(&self.sent_ctx);
        self.write(text.as_bytes()).await?;
        self.record(Dir::Sent, EntryKind::Xml, text);
        Ok(())
    }

    /// Sends bytes as they are (scripted scenarios send malformed XML,
    /// whitespace keep-alives, pipelined data).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.write(bytes).await?;
        self.record(
            Dir::Sent,
            EntryKind::Raw,
            String::from_utf8_lossy(bytes).into_owned(),
        );
        Ok(())
    }

    /// Sends one space: a whitespace keep-alive (RFC 6120 §4.6.1).
    pub async fn send_keepalive(&mut self) -> Result<(), StreamError> {
        self.write(b" ").await?;
        self.record(Dir::Sent, EntryKind::Whitespace, " ".into());
        Ok(())
    }

    /// Sends `<stream:error><CONDITION/>[<text>]</stream:error>`, then closes.
    pub async fn send_stream_error(
        &mut self,
        condition: &str,
        text: Option<&str>,
    ) -> Result<(), StreamError> {
        self.send(&stream_error(condition, text)).await?;
        self.close().await
    }

    /// Sends `</stream:stream>` and shuts the write side down (with a TLS
    /// close_notify on TLS). The read side stays open so the peer's own
    /// closing tag can still be read. Closing twice is a no-op.
    pub async fn close(&mut self) -> Result<(), StreamError> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        let result = async {
            w.write_all(STREAM_END.as_bytes()).await?;
            w.flush().await?;
            w.shutdown().await
        }
        .await;
        self.record(Dir::Sent, EntryKind::Xml, STREAM_END.to_owned());
        result.map_err(StreamError::io)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let w = self.writer.as_mut().ok_or(StreamError::Closed)?;
        w.write_all(bytes).await.map_err(StreamError::io)?;
        // rustls buffers plaintext until flushed; flush plain TCP too, for symmetry.
        w.flush().await.map_err(StreamError::io)
    }

    // ----- receiving -----------------------------------------------------

    /// The next event, waiting at most `deadline`. A timeout leaves the stream
    /// intact: a later call returns what arrives. Cancel-safe for the same
    /// reason (the read itself runs in the reader task), so it may also be
    /// used inside `select!`.
    pub async fn next(&mut self, deadline: Duration) -> Result<Event, ReadError> {
        let reader = self.reader.as_mut().ok_or(ReadError::Closed)?;
        let result = reader.next(deadline).await;
        match &result {
            Ok(Event::Header(h)) => {
                self.recv_ctx = h.ns_context();
                self.peer_header = Some(h.clone());
                self.record(Dir::Received, EntryKind::Xml, h.to_xml_verbatim());
            }
            Ok(Event::Element(e)) => {
                let text = e.to_xml(&self.recv_ctx);
                self.record(Dir::Received, EntryKind::Xml, text);
            }
            Ok(Event::Whitespace) => {
                self.record(Dir::Received, EntryKind::Whitespace, " ".into());
            }
            Ok(Event::End) => self.record(Dir::Received, EntryKind::Xml, STREAM_END.into()),
            Ok(Event::Eof) => {
                if !self.error_recorded {
                    self.error_recorded = true;
                    self.note(Dir::Received, "stream closed by peer".into());
                }
            }
            Err(ReadError::Xml(e)) => {
                if !self.error_recorded {
                    self.error_recorded = true;
                    self.note(
                        Dir::Received,
                        format!("XML error ({}): {}", e.condition(), e.detail()),
                    );
                }
            }
            Err(ReadError::Timeout | ReadError::Closed | ReadError::Busy) => {}
        }
        result
    }

    /// Restarts the stream after SASL success (RFC 6120 §6.4.6): a fresh parser
    /// over the same connection, expecting a new header; buffered bytes are kept.
    pub fn restart(&mut self) -> Result<(), ReadError> {
        self.reader.as_mut().ok_or(ReadError::Closed)?.reset()?;
        self.peer_header = None;
        self.error_recorded = false;
        self.note(Dir::Received, "stream restart".into());
        Ok(())
    }

    // ----- TLS -----------------------------------------------------------

    /// Upgrades to TLS as the client, after `<proceed/>` was received.
    /// Returns how many clear-text bytes had been received after `<proceed/>`
    /// and were discarded (RFC 6120 §5.3.3: never process them as part of the
    /// TLS session). The XML reader restarts on the TLS stream.
    pub async fn starttls_client(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<usize, StreamError> {
        let (tcp, pipelined) = self.take_plain().await?;
        let conn = conn::tls_connect(tcp, config, server_name)
            .await
            .map_err(|e| self.handshake_failed(e))?;
        self.finish_upgrade(conn, Vec::new());
        Ok(pipelined.len())
    }

    /// Upgrades to TLS as the server, after `<proceed/>` was sent. Returns how
    /// many pipelined clear-text bytes were discarded (see [`Self::starttls_client`]).
    pub async fn starttls_server(
        &mut self,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<usize, StreamError> {
        self.starttls_server_inner(config, false).await
    }

    /// Like [`Self::starttls_server`], but WRONGLY feeds the pipelined
    /// clear-text bytes into the encrypted stream's parser. It exists only for
    /// the reference proxy's `process-pipelined-starttls` fault switch.
    pub async fn starttls_server_replaying_pipelined(
        &mut self,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<usize, StreamError> {
        self.starttls_server_inner(config, true).await
    }

    async fn starttls_server_inner(
        &mut self,
        config: Arc<rustls::ServerConfig>,
        replay: bool,
    ) -> Result<usize, StreamError> {
        let (tcp, pipelined) = self.take_plain().await?;
        let conn = conn::tls_accept(tcp, config)
            .await
            .map_err(|e| self.handshake_failed(e))?;
        let count = pipelined.len();
        if replay && count > 0 {
            self.note(
                Dir::Received,
                format!("replaying {count} pipelined clear-text bytes after TLS"),
            );
        }
        self.finish_upgrade(conn, if replay { pipelined } else { Vec::new() });
        Ok(count)
    }

    /// Stops the reader, takes the TCP stream back, and drops whatever the
    /// reader had buffered beyond the last element.
    async fn take_plain(&mut self) -> Result<(TcpStream, Vec<u8>), StreamError> {
        if self.tls.is_some() {
            return Err(StreamError::AlreadyTls);
        }
        let reader = self.reader.take().ok_or(StreamError::Closed)?;
        let released = match reader.release().await {
            Ok(r) => r,
            Err(ReleaseError::Busy(h)) => {
                self.reader = Some(h);
                return Err(StreamError::Busy);
            }
            Err(ReleaseError::Closed) => return Err(StreamError::Closed),
        };
        let writer = self.writer.take().ok_or(StreamError::Closed)?;
        let mut pipelined = released.reader.unread().to_vec();
        pipelined.extend_from_slice(&released.buffered);
        let discarded = pipelined.len();
        if discarded > 0 {
            self.note(
                Dir::Received,
                format!(
                    "discarded {discarded} pipelined clear-text bytes: {:?}",
                    preview(&pipelined)
                ),
            );
        }
        let released_reader = released.reader.inner;
        // Both halves came from the same `split`, so this cannot fail; if it
        // somehow did, the stream is unusable either way.
        if !released_reader.is_pair_of(&writer) {
            return Err(StreamError::Closed);
        }
        match released_reader.unsplit(writer) {
            Conn::Plain(tcp) => Ok((tcp, pipelined)),
            _ => Err(StreamError::AlreadyTls),
        }
    }

    fn handshake_failed(&self, e: std::io::Error) -> StreamError {
        let err = StreamError::tls(e);
        self.note(Dir::Received, err.to_string());
        err
    }

    fn finish_upgrade(&mut self, conn: Conn, replay: Vec<u8>) {
        self.tls = conn.tls_info();
        self.attach(conn, replay);
        self.peer_header = None;
        self.note_handshake();
    }

    fn note_handshake(&self) {
        let version = self
            .tls
            .as_ref()
            .and_then(|t| t.version)
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "unknown version".into());
        let certs = self
            .tls
            .as_ref()
            .and_then(|t| t.peer_certificates.as_ref())
            .map_or(0, Vec::len);
        self.note(
            Dir::Received,
            format!("TLS handshake complete ({version}, {certs} peer certificate(s))"),
        );
    }

    // ----- accessors -----------------------------------------------------

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The peer's certificate chain, end entity first, if TLS is up and the
    /// peer presented one.
    pub fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.tls.as_ref().and_then(|t| t.peer_certificates.clone())
    }

    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls.as_ref().and_then(|t| t.version)
    }

    /// The header the peer sent on the current stream (cleared by restarts).
    pub fn peer_header(&self) -> Option<&StreamHeader> {
        self.peer_header.as_ref()
    }

    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    pub fn stream_no(&self) -> u32 {
        self.stream_no
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Records a free-form note in the transcript (e.g. a scenario step).
    pub fn note(&self, dir: Dir, text: String) {
        self.record(dir, EntryKind::Note, text);
    }

    fn record(&self, dir: Dir, kind: EntryKind, text: String) {
        self.transcript
            .record(self.stream_no, dir, self.tls.is_some(), kind, text);
    }
}

/// XMPP sends many small elements and waits for answers: with Nagle's
/// algorithm and delayed ACKs each round trip over TLS can stall ~40 ms.
fn no_delay(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
}

/// A short, printable view of discarded bytes for the transcript.
fn preview(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let shown = &bytes[..bytes.len().min(MAX)];
    let mut s = String::from_utf8_lossy(shown).into_owned();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}
