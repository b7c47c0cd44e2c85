//! Small wire helpers shared by the peer roles: bounded reads that skip
//! keep-alives, headers, stream ids and per-connection TLS configurations.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::stream::{StreamError, XmppStream};
use crate::tls::{self, Recorder, Transport};
use crate::xml::header::stream_error_condition;
use crate::xml::{Element, Event, NsContext, ReadError, StreamHeader, XmlError};

use super::PeerError;
use super::observe::StepFailure;
use super::profile::{PeerEnv, PeerProfile};

/// Something meaningful read from a stream.
pub(crate) enum Got {
    Header(StreamHeader),
    Element(Element),
}

/// The next header or element within `wait`, skipping whitespace keep-alives.
/// A `<stream:error/>` is reported as a failure, as is the end of the stream.
pub(crate) async fn next(stream: &mut XmppStream, wait: Duration) -> Result<Got, StepFailure> {
    let until = crate::clock::tokio_deadline(wait);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StepFailure::Timeout);
        }
        match stream.next(left).await {
            Ok(Event::Whitespace) => continue,
            Ok(Event::Header(h)) => return Ok(Got::Header(h)),
            Ok(Event::Element(e)) => {
                return match stream_error_condition(&e) {
                    Some(c) => Err(StepFailure::StreamError {
                        condition: c.to_owned(),
                    }),
                    None => Ok(Got::Element(e)),
                };
            }
            Ok(Event::End | Event::Eof) => return Err(StepFailure::Closed),
            Err(ReadError::Timeout) => return Err(StepFailure::Timeout),
            // A reset connection is the transport's failure, not bad XML.
            Err(ReadError::Xml(XmlError::Io(detail))) => return Err(StepFailure::Io { detail }),
            Err(ReadError::Xml(e)) => {
                return Err(StepFailure::Xml {
                    condition: e.condition().to_owned(),
                    detail: e.detail().to_owned(),
                });
            }
            Err(ReadError::Closed | ReadError::Busy) => return Err(StepFailure::Closed),
        }
    }
}

/// The next header; anything else is `Unexpected`.
pub(crate) async fn header(
    stream: &mut XmppStream,
    wait: Duration,
) -> Result<StreamHeader, StepFailure> {
    match next(stream, wait).await? {
        Got::Header(h) => Ok(h),
        Got::Element(e) => Err(unexpected(&e)),
    }
}

/// The next element; a header here is `Unexpected`.
pub(crate) async fn element(
    stream: &mut XmppStream,
    wait: Duration,
) -> Result<Element, StepFailure> {
    match next(stream, wait).await? {
        Got::Element(e) => Ok(e),
        Got::Header(h) => Err(StepFailure::Unexpected {
            element: h.to_xml_verbatim(),
        }),
    }
}

pub(crate) fn unexpected(e: &Element) -> StepFailure {
    StepFailure::Unexpected {
        element: e.to_xml(&NsContext::default()),
    }
}

pub(crate) fn send_failure(e: StreamError) -> StepFailure {
    match e {
        StreamError::Tls { detail, .. } => StepFailure::Tls { detail },
        other => StepFailure::Io {
            detail: other.to_string(),
        },
    }
}

/// An S2S header from `from` to `to` (RFC 6120 §4.7), with `id` when we are
/// the receiving side. It declares the dialback namespace exactly when the
/// profile supports dialback (SPEC §4.7): XEP-0220 §2.4.1 makes that
/// declaration the traditional signal of support, and real servers act on it.
pub(crate) fn s2s_header(profile: &PeerProfile, to: &str, id: Option<String>) -> StreamHeader {
    let mut h = StreamHeader::server()
        .with_from(&profile.domain)
        .with_to(to);
    if !profile.advertises_dialback() {
        h.prefixes.retain(|(prefix, _)| prefix != "db");
    }
    match id {
        Some(id) => h.with_id(id),
        None => h,
    }
}

/// A fresh, unguessable stream id (RFC 6120 §4.7.3; dialback keys depend on it).
pub(crate) fn stream_id() -> Result<String, StepFailure> {
    crate::random::hex::<12>().map_err(|e| StepFailure::Io {
        detail: e.to_string(),
    })
}

/// The client config of one outbound connection: the profile's certificate
/// (none for `no-client-cert`) and a recorder for the server's.
pub(crate) fn client_tls(
    env: &PeerEnv,
    profile: &PeerProfile,
) -> Result<(Arc<rustls::ClientConfig>, Recorder), PeerError> {
    let leaf = env.leaf(profile)?;
    tls::client_config(&env.roots, leaf.as_deref(), Transport::StartTls)
        .map_err(|e| PeerError::Tls(e.to_string()))
}

/// The server config of one inbound connection. A `no-client-cert` peer does
/// not request a client certificate at all (it could never use one).
pub(crate) fn server_tls(
    env: &PeerEnv,
    profile: &PeerProfile,
) -> Result<(Arc<rustls::ServerConfig>, Option<Recorder>), PeerError> {
    let leaf = env.server_leaf(profile)?;
    let map = |e: tls::TlsError| PeerError::Tls(e.to_string());
    if profile.cert == crate::pki::CertVariant::NoClientCert {
        let config = tls::server_config_no_client_auth(&leaf, Transport::StartTls).map_err(map)?;
        Ok((config, None))
    } else {
        let (config, recorder) =
            tls::server_config(&env.roots, &leaf, Transport::StartTls).map_err(map)?;
        Ok((config, Some(recorder)))
    }
}

/// `TLSv1_3`-style name of the negotiated version.
pub(crate) fn tls_version(stream: &XmppStream) -> Option<String> {
    stream.tls_version().map(|v| format!("{v:?}"))
}
