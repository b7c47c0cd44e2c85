//! Outbound streams: the proxy as initiating server (SPEC §4.2). Stanzas for
//! a partner domain queue on a link while its stream negotiates; a link that
//! cannot be established bounces what it holds.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::connect::{self, Failure};
use super::policy::{self, Offered, OutboundStep};
use super::{ProxyEvent, Shared, lock};
use crate::dialback::{self, DbElement, DbKind};
use crate::partner::{Method, Partner};
use crate::sasl;
use crate::stanza;
use crate::stream::XmppStream;
use crate::xml::{Element, Event, ReadError};

type Key = (String, String);

/// Queues `stanza` from `local` to the partner domain `remote`, opening the
/// stream if there is none.
pub(crate) fn enqueue(shared: &Arc<Shared>, local: &str, remote: &str, stanza: Element) {
    let key = (local.to_ascii_lowercase(), remote.to_ascii_lowercase());
    let mut links = lock(&shared.links);
    let stanza = match links.get(&key) {
        Some(tx) => match tx.send(stanza) {
            Ok(()) => return,
            // The link is closing; start a new one with this stanza.
            Err(mpsc::error::SendError(stanza)) => stanza,
        },
        None => stanza,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(stanza);
    links.insert(key.clone(), tx);
    drop(links);
    let task_shared = shared.clone();
    shared.spawn(run_link(task_shared, key, rx));
}

async fn run_link(shared: Arc<Shared>, key: Key, mut rx: mpsc::UnboundedReceiver<Element>) {
    let (local, remote) = (key.0.clone(), key.1.clone());
    let settings = shared.settings();
    // Outbound, only configured partners are reached (no stand-in here).
    let Some(partner) = settings.partners.partner_for(&remote).cloned() else {
        let reason = format!("{remote} is not a federation partner");
        shared.record(ProxyEvent::OutboundFailed {
            remote: remote.clone(),
            reason: reason.clone(),
        });
        return close_link(&shared, &key, rx, &reason);
    };
    match establish(&shared, &partner, &local, &remote).await {
        Ok((stream, method)) => {
            tracing::info!(%local, %remote, %method, "outbound stream authenticated");
            shared.record(ProxyEvent::OutboundAuthenticated {
                remote: remote.clone(),
                method,
            });
            let reason = pump(&shared, &partner, stream, &mut rx).await;
            close_link(&shared, &key, rx, &reason);
        }
        Err(failure) => {
            tracing::info!(%local, %remote, reason = %failure.reason, "outbound stream failed");
            shared.record(ProxyEvent::OutboundFailed {
                remote: remote.clone(),
                reason: failure.reason.clone(),
            });
            close_link(&shared, &key, rx, &failure.reason);
        }
    }
}

/// Removes the link (if it is still ours) and bounces what it still holds.
fn close_link(
    shared: &Arc<Shared>,
    key: &Key,
    mut rx: mpsc::UnboundedReceiver<Element>,
    reason: &str,
) {
    // While `rx` is open every send to our sender succeeds, so nobody has
    // replaced the entry: it is ours to remove, before closing the queue.
    lock(&shared.links).remove(key);
    rx.close();
    while let Ok(stanza) = rx.try_recv() {
        bounce(shared, &stanza, reason);
    }
}

/// Tells the local sender its stanza did not leave (RFC 6120 §8.3: an error
/// reply); the local users are simulated, so the bounce is recorded.
fn bounce(shared: &Arc<Shared>, stanza: &Element, reason: &str) {
    if stanza.attr("type") == Some("error") {
        return; // never answer an error with an error
    }
    let reply = stanza::error_reply(stanza, "cancel", "remote-server-not-found");
    shared.record(ProxyEvent::Bounced {
        to: stanza.attr("from").unwrap_or_default().to_string(),
        stanza: reply.to_string(),
        reason: reason.to_string(),
    });
}

/// Negotiates an outbound stream per SPEC §4.2: STARTTLS whenever offered
/// and allowed, never a downgrade, the best admitted method the partner offers.
async fn establish(
    shared: &Arc<Shared>,
    partner: &Partner,
    local: &str,
    remote: &str,
) -> Result<(XmppStream, Method), Failure> {
    let mut s = connect::reach(shared, partner, remote).await?;
    let result = negotiate(shared, partner, &mut s, local, remote).await;
    match result {
        Ok(method) => Ok((s, method)),
        Err(failure) => {
            let _ = s.close().await;
            Err(failure)
        }
    }
}

async fn negotiate(
    shared: &Arc<Shared>,
    partner: &Partner,
    s: &mut XmppStream,
    local: &str,
    remote: &str,
) -> Result<Method, Failure> {
    let faults = shared.settings().faults.clone();
    let n = partner.negotiation;
    let mut cert_ok = false;
    loop {
        let (header, features) = connect::open(shared, s, local, remote).await?;
        let mut offered = Offered {
            starttls: features.starttls.is_some(),
            external: features.offers_external(),
            dialback: features.dialback,
        };
        loop {
            match policy::outbound_step(n, s.is_tls(), cert_ok, offered, &faults) {
                OutboundStep::StartTls => {
                    cert_ok = connect::starttls(shared, s, local, remote).await?;
                    tracing::debug!(%remote, cert_ok, "outbound stream: TLS up");
                    break; // a fresh stream on TLS
                }
                OutboundStep::SaslExternal => {
                    if external(shared, s).await? {
                        s.restart()
                            .map_err(|e| Failure::new("remote-connection-failed", e.to_string()))?;
                        connect::open(shared, s, local, remote).await?;
                        return Ok(Method::SaslOverTls);
                    }
                    // XEP-0178: after a failure, dialback may still be used.
                    offered.external = false;
                }
                OutboundStep::Dialback => {
                    let id = header.id.clone().ok_or_else(|| {
                        Failure::new("remote-connection-failed", "the partner's header has no id")
                    })?;
                    dialback_originate(shared, s, local, remote, &id).await?;
                    return Ok(policy::dialback_method(s.is_tls()));
                }
                OutboundStep::GiveUp(reason) => {
                    tracing::debug!(%remote, reason, "outbound stream: giving up");
                    return Err(Failure::new("remote-connection-failed", reason));
                }
            }
        }
    }
}

/// SASL EXTERNAL without an authorization identity; `Ok(false)` on `<failure/>`.
async fn external(shared: &Shared, s: &mut XmppStream) -> Result<bool, Failure> {
    s.send(&sasl::auth_external(None))
        .await
        .map_err(|e| Failure::new("remote-connection-failed", e.to_string()))?;
    let answer = connect::expect_element(shared, s).await?;
    Ok(sasl::is_success(&answer))
}

/// The originating side of dialback: send the key, wait for the verdict.
async fn dialback_originate(
    shared: &Shared,
    s: &mut XmppStream,
    local: &str,
    remote: &str,
    stream_id: &str,
) -> Result<(), Failure> {
    let key = shared.secret.key(remote, local, stream_id);
    s.send(&dialback::result_request(local, remote, &key))
        .await
        .map_err(|e| Failure::new("remote-connection-failed", e.to_string()))?;
    loop {
        let e = connect::expect_element(shared, s).await?;
        let Some(db) = DbElement::parse(&e) else {
            continue;
        };
        if db.kind != DbKind::Result {
            continue;
        }
        return match db.ty.as_deref() {
            Some("valid") => Ok(()),
            Some("error") => Err(Failure::new(
                "remote-connection-failed",
                format!("dialback error <{}/>", db.error.unwrap_or_default()),
            )),
            _ => Err(Failure::new(
                "remote-connection-failed",
                "dialback key judged invalid",
            )),
        };
    }
}

/// Sends queued stanzas until the queue closes or the stream ends; returns why
/// it stopped. Sends whitespace keep-alives when the partner asks for them.
async fn pump(
    shared: &Arc<Shared>,
    partner: &Partner,
    mut s: XmppStream,
    rx: &mut mpsc::UnboundedReceiver<Element>,
) -> String {
    let tick = if partner.keep_alive {
        shared.timeouts.keepalive
    } else {
        shared.timeouts.idle
    };
    let mut last_activity = Instant::now();
    loop {
        tokio::select! {
            stanza = rx.recv() => {
                let Some(stanza) = stanza else { return "queue closed".into() };
                if let Err(e) = s.send(&stanza).await {
                    bounce(shared, &stanza, &e.to_string());
                    return e.to_string();
                }
                last_activity = Instant::now();
            }
            event = s.next(tick) => match event {
                Ok(Event::Element(_) | Event::Whitespace | Event::Header(_)) => {}
                Err(ReadError::Timeout) => {
                    if last_activity.elapsed() >= shared.timeouts.idle {
                        let _ = s.close().await;
                        return "idle".into();
                    }
                    if partner.keep_alive
                        && let Err(e) = s.send_keepalive().await
                    {
                        return e.to_string();
                    }
                }
                Ok(Event::End | Event::Eof) => return "the partner closed the stream".into(),
                Err(e) => return e.to_string(),
            },
        }
    }
}
