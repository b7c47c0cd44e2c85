//! `expect-no-delivery` without waiting for nothing (issue 13). A server
//! processes the stanzas of one stream in order (RFC 6120 §10.1), so a
//! second stanza Y sent after X over the same stream to the same recipient
//! settles X's fate once Y (its delivery, or an error reply to it) comes
//! back the way X would have: X was delivered before Y or not at all. A
//! stream the target ended settles it too: nothing sent on it is processed
//! later. Only where no barrier can be sent or none comes back does the step
//! wait, bounded, and the case says so (`CaseResult.waited`).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::super::live::{Live, Seen};
use super::{Outcome, Run, from_domain, unmet};
use crate::c2s::Session;
use crate::peer::ServerEvent;
use crate::run::LOCAL_USER;
use crate::run::script::error::StepError;
use crate::scenario::script::Template;
use crate::xml::{Element, NS_CLIENT, NS_SERVER};

/// XEP-0199.
const NS_PING: &str = "urn:xmpp:ping";

/// How often the stream and the observation point are looked at while a
/// barrier is on its way.
const SLICE: Duration = Duration::from_millis(10);

/// How the absence of X was settled.
enum Settled {
    /// X arrived after all: where, and as what.
    Delivered(String),
    /// The barrier came back first.
    Barrier(String),
    /// The target ended the stream before anything came back.
    Closed(String),
    /// Neither: the bounded wait ran out (why no barrier settled it).
    Waited(String),
}

impl Run<'_> {
    /// `expect-no-delivery`: settled by a barrier, a close or, failing
    /// both, the bounded `wait`.
    pub(super) async fn no_delivery(
        &mut self,
        id: String,
        at: &Template,
        wait: Duration,
    ) -> Result<Outcome, StepError> {
        self.barriers += 1;
        // A managed server's users are shared by concurrent scenarios: their
        // barriers carry the scenario's own domain.
        let barrier_id = match self.harness.target.local_users() {
            Some(_) => format!("barrier-{}-{}", self.barriers, self.peers.domain),
            None => format!("barrier-{}", self.barriers),
        };
        let target = self.peers.target.domain.clone();
        let recipient = format!("{LOCAL_USER}@{target}");
        let step_wait = self.harness.options.step;
        let started = Instant::now();
        let (settled, place) = if let Some(users) = self.harness.target.local_users() {
            let users = users.map_err(|e| StepError::LocalUsers(e.to_owned()))?;
            let sessions = users
                .online()
                .await
                .map_err(|e| StepError::LocalUsers(e.to_string()))?;
            let (since, peer) = (self.started, self.peers.domain.clone());
            let delivered_x = || {
                sessions.iter().find_map(|s| {
                    s.received_since(since)
                        .into_iter()
                        .find(|r| {
                            r.element.attr("id") == Some(id.as_str())
                                && r.element.attr("type") != Some("error")
                                && r.element.attr("from").is_none_or(|f| from_domain(f, &peer))
                        })
                        .map(|r| format!("{} received {}", s.jid(), r.xml))
                })
            };
            // The barrier must reach X's recipient over the same two streams.
            let alice: Option<Arc<Session>> =
                sessions.iter().find(|s| s.bare() == recipient).cloned();
            let came_back = || {
                alice.as_ref().is_some_and(|s| {
                    s.received_since(since).iter().any(|r| {
                        r.element.attr("id") == Some(barrier_id.as_str())
                            && r.element.attr("type") != Some("error")
                    })
                })
            };
            let from = self.conns.last().map(|c| c.from.clone());
            let barrier = from.map(|f| barrier_message(&f, &recipient, &barrier_id));
            let mut settled = settle(
                self.conns.last_mut(),
                barrier,
                wait,
                step_wait,
                &delivered_x,
                &came_back,
            )
            .await;
            // The close ended the S2S stream, but X may still be on its way
            // over alice's c2s stream: a c2s ping answered after it flushes it.
            if let (Settled::Closed(how), Some(alice)) = (&settled, &alice) {
                let flushed = flush_c2s(alice, &target, &barrier_id, since, wait).await;
                settled = match delivered_x() {
                    Some(xml) => Settled::Delivered(xml),
                    None if flushed => Settled::Closed(format!(
                        "{how}; {recipient}'s c2s stream flushed by a ping"
                    )),
                    None => Settled::Waited(format!(
                        "{how}, but the c2s ping of {recipient} was not answered within {wait:?}"
                    )),
                };
            }
            // A client that went away saw nothing, which proves nothing.
            if matches!(settled, Settled::Waited(_))
                && let Some(gone) = sessions.iter().find(|s| !s.is_open())
            {
                return Err(StepError::ClientOffline {
                    jid: gone.jid().to_string(),
                    why: gone.ended().unwrap_or_default(),
                });
            }
            let jids: Vec<&str> = sessions.iter().map(|s| s.bare()).collect();
            (settled, format!("the client of {}", jids.join(" or ")))
        } else {
            let (at, entry) = self.peers.entry_at(at)?;
            let server = &entry.placed.server;
            let with_id = |want: &str, error_too: bool| {
                server.events().into_iter().find_map(|e| match e {
                    ServerEvent::Stanza { stanza, .. }
                        if stanza.id.as_deref() == Some(want)
                            && (error_too || stanza.ty.as_deref() != Some("error")) =>
                    {
                        Some(stanza.xml)
                    }
                    _ => None,
                })
            };
            // The echo user answers X's sender at `at`: the barrier comes from
            // there too, so that its echo (or error reply) takes X's way back.
            let delivered_x = || with_id(&id, false).map(|xml| format!("{at} received {xml}"));
            let came_back = || with_id(&barrier_id, true).is_some();
            let barrier = Some(barrier_message(&at, &recipient, &barrier_id));
            let settled = settle(
                self.conns.last_mut(),
                barrier,
                wait,
                step_wait,
                &delivered_x,
                &came_back,
            )
            .await;
            (settled, at)
        };
        let what = format!("no delivery of the stanza with id '{id}' at {place}");
        match settled {
            Settled::Delivered(xml) => {
                self.note(xml.clone());
                unmet(what, xml)
            }
            Settled::Barrier(fact) | Settled::Closed(fact) => {
                Ok(Outcome::Met(format!("not delivered: {fact}")))
            }
            Settled::Waited(why) => {
                let waited = started.elapsed();
                self.waited(waited, why.clone());
                Ok(Outcome::Met(format!(
                    "not delivered within {waited:.1?} ({why})"
                )))
            }
        }
    }
}

/// The barrier: a message from `tester@{from}` to X's recipient.
fn barrier_message(from: &str, to: &str, id: &str) -> Element {
    Element::new(NS_SERVER, "message")
        .with_attr("from", format!("tester@{from}"))
        .with_attr("to", to)
        .with_attr("id", id)
        .with_attr("type", "chat")
        .with_child(Element::new(NS_SERVER, "body").with_text("barrier (RFC 6120 §10.1)"))
}

/// Sends the barrier on `live` (if any) and watches until X arrives, the
/// barrier comes back, the stream ends or `wait` runs out. Whatever the
/// stream sent meanwhile is left for the next step.
async fn settle(
    live: Option<&mut Live>,
    barrier: Option<Element>,
    wait: Duration,
    send_wait: Duration,
    delivered_x: &(dyn Fn() -> Option<String> + Sync),
    came_back: &(dyn Fn() -> bool + Sync),
) -> Settled {
    let until = Instant::now() + wait;
    let x_or = |other: Settled| delivered_x().map_or(other, Settled::Delivered);
    let (Some(live), Some(barrier)) = (live, barrier) else {
        return poll(until, wait, delivered_x, "no connection to carry a barrier").await;
    };
    if let Some(how) = live.ended.clone() {
        return x_or(Settled::Closed(format!(
            "the target had ended the stream ({how})"
        )));
    }
    let id = barrier.attr("id").unwrap_or_default().to_owned();
    match tokio::time::timeout(send_wait, live.stream.send(&barrier)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return x_or(Settled::Closed(format!(
                "the stream is gone (the barrier could not be sent: {e})"
            )));
        }
        Err(_) => {
            return poll(until, wait, delivered_x, "the barrier could not be sent").await;
        }
    }
    let mut ahead = Vec::new();
    let settled = loop {
        // Y first, then X: X, if delivered, came back before Y.
        if came_back() {
            break x_or(Settled::Barrier(format!("barrier '{id}' came back first")));
        }
        if let Some(xml) = delivered_x() {
            break Settled::Delivered(xml);
        }
        if let Some(how) = live.ended.clone() {
            break x_or(Settled::Closed(format!(
                "the target ended the stream ({how})"
            )));
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break Settled::Waited(format!("barrier '{id}' did not come back"));
        }
        match live.read(left.min(SLICE)).await {
            Seen::Timeout => {}
            seen => ahead.push(seen),
        }
    };
    for seen in ahead.into_iter().rev() {
        live.push_back(seen);
    }
    settled
}

/// The bounded wait where no barrier can exist.
async fn poll(
    until: Instant,
    wait: Duration,
    delivered_x: &(dyn Fn() -> Option<String> + Sync),
    why: &str,
) -> Settled {
    loop {
        if let Some(xml) = delivered_x() {
            return Settled::Delivered(xml);
        }
        if Instant::now() >= until {
            return Settled::Waited(format!("{why}; waited {wait:?}"));
        }
        tokio::time::sleep(SLICE).await;
    }
}

/// A c2s ping from `alice` to her server, answered after everything the
/// server wrote to her stream before it.
async fn flush_c2s(
    alice: &Session,
    target: &str,
    barrier_id: &str,
    since: Instant,
    wait: Duration,
) -> bool {
    let id = format!("{barrier_id}-c2s");
    let ping = Element::new(NS_CLIENT, "iq")
        .with_attr("type", "get")
        .with_attr("to", target)
        .with_attr("id", id.as_str())
        .with_child(Element::new(NS_PING, "ping"));
    if alice.send(ping).await.is_err() {
        return false;
    }
    alice
        .wait_for(since, wait, |e| e.attr("id") == Some(id.as_str()))
        .await
        .is_some()
}
