//! The transport under a stream: plain TCP or TLS in either role.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use super::TlsInfo;

/// A connection an [`XmppStream`](super::XmppStream) runs on.
pub enum Conn {
    Plain(TcpStream),
    /// We are the TLS client (initiating server).
    ClientTls(Box<client::TlsStream<TcpStream>>),
    /// We are the TLS server (receiving server).
    ServerTls(Box<server::TlsStream<TcpStream>>),
}

pub(crate) async fn tls_connect(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
) -> io::Result<Conn> {
    let tls = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(Conn::ClientTls(Box::new(tls)))
}

pub(crate) async fn tls_accept(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> io::Result<Conn> {
    let tls = TlsAcceptor::from(config).accept(tcp).await?;
    Ok(Conn::ServerTls(Box::new(tls)))
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(t) => t,
            Conn::ClientTls(t) => t.get_ref().0,
            Conn::ServerTls(t) => t.get_ref().0,
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.tcp().local_addr().ok()
    }

    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.tcp().peer_addr().ok()
    }

    /// What the handshake negotiated (`None` for plain TCP).
    pub fn tls_info(&self) -> Option<TlsInfo> {
        fn common(c: &rustls::CommonState, sni: Option<String>) -> TlsInfo {
            TlsInfo {
                version: c.protocol_version(),
                cipher_suite: c.negotiated_cipher_suite().map(|s| s.suite()),
                peer_certificates: c
                    .peer_certificates()
                    .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect()),
                alpn: c.alpn_protocol().map(<[u8]>::to_vec),
                sni,
            }
        }
        match self {
            Conn::Plain(_) => None,
            Conn::ClientTls(t) => Some(common(t.get_ref().1, None)),
            Conn::ServerTls(t) => {
                let s = t.get_ref().1;
                Some(common(s, s.server_name().map(str::to_owned)))
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_read(cx, buf),
            Conn::ClientTls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            Conn::ServerTls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_write(cx, buf),
            Conn::ClientTls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            Conn::ServerTls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_flush(cx),
            Conn::ClientTls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            Conn::ServerTls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(t) => Pin::new(t).poll_shutdown(cx),
            Conn::ClientTls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            Conn::ServerTls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}
