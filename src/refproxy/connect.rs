//! Reaching a partner's server as the initiating side: resolution (proxy FQDN
//! or RFC 6120 §3.2 SRV), TCP, the stream header exchange and STARTTLS. Used
//! for outbound streams and for dialback verification alike.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Shared, policy};
use crate::dns::ResolveError;
use crate::features::Features;
use crate::partner::Partner;
use crate::starttls;
use crate::stream::{Transcript, XmppStream};
use crate::tls::{self, Transport};
use crate::xml::header::stream_error_condition;
use crate::xml::{Element, Event, ReadError, StreamHeader};

/// The port of a proxy FQDN and of the A-record fallback (RFC 6120 §3.2.2).
const S2S_PORT: u16 = 5269;

/// Why a partner's server could not be used; `condition` is the dialback /
/// stanza error condition that reports it (XEP-0220 §2.4).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub condition: &'static str,
    pub reason: String,
}

impl Failure {
    pub fn new(condition: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            condition,
            reason: reason.into(),
        }
    }
}

/// Resolves `remote` for `partner` and connects to the first reachable address.
pub(crate) async fn reach(
    shared: &Arc<Shared>,
    partner: &Partner,
    remote: &str,
) -> Result<XmppStream, Failure> {
    let addrs = addresses(shared, partner, remote).await?;
    let mut last = String::from("no address to try");
    // A refused connection is not a timeout (XEP-0220 §2.4 has both).
    let mut condition = "remote-server-timeout";
    for addr in addrs {
        let attempt = tokio::time::timeout(
            shared.timeouts.connect,
            XmppStream::connect(addr, shared.limits, Transcript::new(), shared.stream_no()),
        )
        .await;
        match attempt {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => {
                condition = "remote-connection-failed";
                last = format!("{addr}: {e}");
            }
            Err(_) => last = format!("{addr}: connect timed out"),
        }
        tracing::debug!(%remote, %last, "connection attempt failed");
    }
    Err(Failure::new(
        condition,
        format!("cannot connect to {remote}: {last}"),
    ))
}

/// Where to connect, in order: the proxy FQDN on port 5269 when the partner
/// has one (SRV must not be used then), otherwise the S2S resolution order.
async fn addresses(
    shared: &Arc<Shared>,
    partner: &Partner,
    remote: &str,
) -> Result<Vec<SocketAddr>, Failure> {
    let not_found = |e: ResolveError| Failure::new("remote-server-not-found", e.to_string());
    let faults = &shared.settings().faults;
    let ipv6 = policy::uses_ipv6(faults);
    let usable = move |a: &SocketAddr| ipv6 || a.is_ipv4();
    if let Some(fqdn) = &partner.proxy_fqdn {
        let ips = shared.resolver.lookup_ip(fqdn).await.map_err(not_found)?;
        return Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, S2S_PORT))
            .filter(usable)
            .collect());
    }
    let candidates = match shared.resolver.resolve_s2s(remote).await {
        Ok(c) => c,
        Err(ResolveError::ServiceUnavailable(_)) if policy::falls_back_after_srv_dot(faults) => {
            let ips = shared.resolver.lookup_ip(remote).await.map_err(not_found)?;
            return Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, S2S_PORT))
                .filter(usable)
                .collect());
        }
        Err(e) => return Err(not_found(e)),
    };
    // Direct TLS (XEP-0368) is optional; the proxy only speaks STARTTLS.
    Ok(candidates
        .iter()
        .filter(|c| !c.direct_tls)
        .flat_map(|c| c.socket_addrs().collect::<Vec<_>>())
        .filter(usable)
        .collect())
}

/// Sends our header and reads the partner's header and features.
pub(crate) async fn open(
    shared: &Shared,
    s: &mut XmppStream,
    local: &str,
    remote: &str,
) -> Result<(StreamHeader, Features), Failure> {
    let header = StreamHeader::server().with_from(local).with_to(remote);
    s.send_header(&header).await.map_err(io_failure)?;
    let theirs = loop {
        match s.next(shared.timeouts.step).await {
            Ok(Event::Header(h)) => break h,
            Ok(Event::Whitespace) => continue,
            other => return Err(unexpected(other)),
        }
    };
    let element = expect_element(shared, s).await?;
    let features = Features::parse(&element)
        .ok_or_else(|| Failure::new("remote-connection-failed", "no stream features"))?;
    Ok((theirs, features))
}

/// STARTTLS as the initiating side; returns whether the partner's certificate
/// authenticates `remote` (chain and name, RFC 6125).
pub(crate) async fn starttls(
    shared: &Shared,
    s: &mut XmppStream,
    local: &str,
    remote: &str,
) -> Result<bool, Failure> {
    s.send(&starttls::starttls()).await.map_err(io_failure)?;
    let answer = expect_element(shared, s).await?;
    if !starttls::is_proceed(&answer) {
        return Err(Failure::new(
            "remote-connection-failed",
            "STARTTLS refused by the partner",
        ));
    }
    let cert = shared.cert_for(local);
    let (config, recorder) =
        tls::client_config(&shared.trust, cert.as_deref(), Transport::StartTls)
            .map_err(|e| Failure::new("remote-connection-failed", e.to_string()))?;
    let name = tls::server_name(remote)
        .map_err(|e| Failure::new("remote-connection-failed", e.to_string()))?;
    s.starttls_client(config, name)
        .await
        .map_err(|e| Failure::new("remote-connection-failed", e.to_string()))?;
    Ok(tls::check_peer(&recorder.finish(), remote).ok())
}

/// The next element, skipping keep-alives; anything else is a failure.
pub(crate) async fn expect_element(
    shared: &Shared,
    s: &mut XmppStream,
) -> Result<Element, Failure> {
    loop {
        match s.next(shared.timeouts.step).await {
            Ok(Event::Element(e)) => {
                if let Some(condition) = stream_error_condition(&e) {
                    return Err(Failure::new(
                        "remote-connection-failed",
                        format!("stream error <{condition}/> from the partner"),
                    ));
                }
                return Ok(e);
            }
            Ok(Event::Whitespace) => continue,
            other => return Err(unexpected(other)),
        }
    }
}

fn unexpected(event: Result<Event, ReadError>) -> Failure {
    match event {
        Err(ReadError::Timeout) => {
            Failure::new("remote-server-timeout", "the partner did not answer")
        }
        Err(e) => Failure::new("remote-connection-failed", e.to_string()),
        Ok(Event::End | Event::Eof) => {
            Failure::new("remote-connection-failed", "the partner closed the stream")
        }
        Ok(other) => Failure::new("remote-connection-failed", format!("unexpected {other:?}")),
    }
}

fn io_failure(e: crate::stream::StreamError) -> Failure {
    Failure::new("remote-connection-failed", e.to_string())
}
