//! A logged-in client: one task owns the stream, records every stanza that
//! arrives (with its arrival time) and sends what it is handed. [`Users`]
//! are the local users of one managed server instance.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::RootCertStore;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::login::{Login, Provision, xml};
use super::{Account, C2sError};
use crate::stream::{Transcript, XmppStream};
use crate::xml::{Element, Event, NS_CLIENT, ReadError};

const NS_PING: &str = "urn:xmpp:ping";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// The resource every session binds.
const RESOURCE: &str = "s2spec";

/// One stanza as it reached the client.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub element: Element,
    /// As serialised in the client's namespace, for reports.
    pub xml: String,
}

/// What the receive loop shares with the session's owner.
struct Inbox {
    stanzas: Mutex<Vec<Received>>,
    /// The number of stanzas so far: waiters watch it change.
    count: watch::Sender<usize>,
    /// Why the stream ended, once it did.
    ended: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while pushing: the
    // data is still a list of stanzas.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Command {
    Send(Element),
    Close,
}

/// A bound, present client session.
pub struct Session {
    jid: String,
    inbox: Arc<Inbox>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    transcript: Transcript,
    mechanism: &'static str,
}

impl Session {
    /// Logs in (registering first if asked) and starts the receive loop.
    pub async fn login(login: &Login<'_>) -> Result<Session, C2sError> {
        let bound = login.run().await?;
        let inbox = Arc::new(Inbox {
            stanzas: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            ended: Mutex::new(None),
        });
        let (commands, rx) = mpsc::channel(16);
        let task = tokio::spawn(receive(bound.stream, inbox.clone(), rx));
        Ok(Session {
            jid: bound.jid,
            inbox,
            commands,
            task,
            transcript: bound.transcript,
            mechanism: bound.mechanism,
        })
    }

    /// The full JID the server bound.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// The bare JID.
    pub fn bare(&self) -> &str {
        self.jid.split('/').next().unwrap_or(&self.jid)
    }

    /// The SASL mechanism the login used.
    pub fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    pub fn is_open(&self) -> bool {
        !self.task.is_finished()
    }

    /// Why the stream ended, if it did.
    pub fn ended(&self) -> Option<String> {
        lock(&self.inbox.ended).clone()
    }

    /// Everything on the wire of this session (login included).
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Stanzas that arrived at or after `since`.
    pub fn received_since(&self, since: Instant) -> Vec<Received> {
        lock(&self.inbox.stanzas)
            .iter()
            .filter(|r| r.at >= since)
            .cloned()
            .collect()
    }

    /// The first stanza since `since` that `fits`, waiting up to `wait` for it.
    pub async fn wait_for(
        &self,
        since: Instant,
        wait: Duration,
        fits: impl Fn(&Element) -> bool,
    ) -> Option<Received> {
        let until = Instant::now() + wait;
        let mut changes = self.inbox.count.subscribe();
        loop {
            // Marked seen before looking, so that nothing pushed in between is missed.
            changes.borrow_and_update();
            let found = lock(&self.inbox.stanzas)
                .iter()
                .find(|r| r.at >= since && fits(&r.element))
                .cloned();
            if found.is_some() {
                return found;
            }
            match tokio::time::timeout_at(until, changes.changed()).await {
                Ok(Ok(())) => continue,
                // The loop ended (nothing more can come) or the time is up.
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Sends a stanza as this user.
    pub async fn send(&self, stanza: Element) -> Result<(), C2sError> {
        self.commands
            .send(Command::Send(stanza))
            .await
            .map_err(|_| C2sError::Ended {
                jid: self.jid.clone(),
            })
    }

    /// Closes the stream (waiting up to `wait`); the task is stopped either way.
    pub async fn close(self, wait: Duration) {
        if self.commands.send(Command::Close).await.is_ok() {
            let until = Instant::now() + wait;
            while !self.task.is_finished() && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The receive loop: records stanzas, answers the server's pings (a client
/// must answer every IQ request, RFC 6120 §8.2.3), sends what it is handed.
async fn receive(mut stream: XmppStream, inbox: Arc<Inbox>, mut commands: mpsc::Receiver<Command>) {
    // Long enough that idling costs nothing; the loop ends on close or drop.
    const IDLE: Duration = Duration::from_secs(3600);
    enum Next {
        Command(Option<Command>),
        Event(Result<Event, ReadError>),
    }
    let why = loop {
        let next = tokio::select! {
            c = commands.recv() => Next::Command(c),
            e = stream.next(IDLE) => Next::Event(e),
        };
        match next {
            Next::Command(Some(Command::Send(e))) => {
                if let Err(e) = stream.send(&e).await {
                    break format!("sending failed: {e}");
                }
            }
            Next::Command(Some(Command::Close) | None) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.close()).await;
                break "closed by s2spec".to_string();
            }
            Next::Event(Ok(Event::Element(e))) => {
                if let Some(answer) = answer_iq(&e) {
                    let _ = stream.send(&answer).await;
                }
                let received = Received {
                    at: Instant::now(),
                    xml: xml(&e),
                    element: e,
                };
                let n = {
                    let mut all = lock(&inbox.stanzas);
                    all.push(received);
                    all.len()
                };
                inbox.count.send_replace(n);
            }
            Next::Event(Ok(Event::Whitespace | Event::Header(_)) | Err(ReadError::Timeout)) => {}
            Next::Event(Ok(Event::End)) => break "the server closed the stream".into(),
            Next::Event(Ok(Event::Eof)) => break "the connection closed".into(),
            Next::Event(Err(e)) => break format!("read error: {e}"),
        }
    };
    *lock(&inbox.ended) = Some(why);
}

/// The answer to an IQ request: a result for a ping, `service-unavailable`
/// for anything else (RFC 6120 §8.4).
fn answer_iq(e: &Element) -> Option<Element> {
    if !e.is(NS_CLIENT, "iq") || !matches!(e.attr("type"), Some("get" | "set")) {
        return None;
    }
    let mut reply = Element::new(NS_CLIENT, "iq");
    if let Some(id) = e.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = e.attr("from") {
        reply.set_attr("to", from);
    }
    let is_ping = e.child(NS_PING, "ping").is_some() && e.attr("type") == Some("get");
    if is_ping {
        reply.set_attr("type", "result");
    } else {
        reply.set_attr("type", "error");
        reply = reply.with_child(
            Element::new(NS_CLIENT, "error")
                .with_attr("type", "cancel")
                .with_child(Element::new(NS_STANZAS, "service-unavailable")),
        );
    }
    Some(reply)
}

/// The local users of one server instance, each logged in once and kept
/// online for every scenario the instance serves.
pub struct Users {
    addr: SocketAddr,
    domain: String,
    trust: Arc<RootCertStore>,
    wait: Duration,
    sessions: tokio::sync::Mutex<BTreeMap<String, (Account, Arc<Session>)>>,
}

impl Users {
    /// Creates the accounts (per `provision`) and logs each one in.
    pub async fn provision(
        addr: SocketAddr,
        domain: &str,
        accounts: Vec<Account>,
        provision: Provision,
        trust: Arc<RootCertStore>,
        wait: Duration,
    ) -> Result<Users, C2sError> {
        let mut sessions = BTreeMap::new();
        for account in accounts {
            let login = Login {
                addr,
                domain,
                account: &account,
                trust: trust.clone(),
                wait,
                register: provision == Provision::InBand,
                resource: RESOURCE,
            };
            let session = Session::login(&login).await?;
            tracing::info!(
                jid = session.jid(),
                mechanism = session.mechanism(),
                "local user online"
            );
            sessions.insert(account.user.clone(), (account, Arc::new(session)));
        }
        Ok(Users {
            addr,
            domain: domain.to_string(),
            trust,
            wait,
            sessions: tokio::sync::Mutex::new(sessions),
        })
    }

    /// Every user's session, logging in again any whose stream has ended.
    pub async fn online(&self) -> Result<Vec<Arc<Session>>, C2sError> {
        let mut sessions = self.sessions.lock().await;
        for (account, session) in sessions.values_mut() {
            if session.is_open() {
                continue;
            }
            tracing::warn!(
                jid = session.jid(),
                why = session.ended().unwrap_or_default(),
                "local user offline; logging in again"
            );
            let login = Login {
                addr: self.addr,
                domain: &self.domain,
                account,
                trust: self.trust.clone(),
                wait: self.wait,
                register: false,
                resource: RESOURCE,
            };
            *session = Arc::new(Session::login(&login).await?);
        }
        Ok(sessions.values().map(|(_, s)| s.clone()).collect())
    }

    /// The session of `user`, if that user is provisioned.
    pub async fn session(&self, user: &str) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().await;
        sessions.get(user).map(|(_, s)| s.clone())
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Closes every session.
    pub async fn shutdown(&self) {
        let sessions = std::mem::take(&mut *self.sessions.lock().await);
        for (_, (_, session)) in sessions {
            if let Ok(s) = Arc::try_unwrap(session) {
                s.close(Duration::from_secs(1)).await;
            }
            // A session still shared is aborted when its last owner drops it.
        }
    }
}
