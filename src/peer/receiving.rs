//! The peer server: a listener that plays the receiving server (and the
//! authoritative server) for one peer domain, one task per inbound
//! connection, all of them stopped by [`PeerServer::shutdown`] or on drop.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::PeerError;
use super::inbound;
use super::observe::{ElementSeen, ServerEvent};
use super::profile::{PeerEnv, PeerProfile};

/// Where the target listens and which domain it is: where a receiving peer
/// connects back for dialback verification (the harness passes addresses
/// directly; DNS is not involved here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub addr: SocketAddr,
    pub domain: String,
}

/// Events kept per server; beyond this they are dropped, so a flooding
/// target cannot exhaust memory.
const MAX_EVENTS: usize = 10_000;

/// The shared, append-only record of a server's events, with a change signal
/// so waiters need no polling.
#[derive(Clone)]
pub(crate) struct EventLog {
    events: Arc<Mutex<Vec<ServerEvent>>>,
    changed: Arc<watch::Sender<usize>>,
}

impl EventLog {
    fn new() -> EventLog {
        EventLog {
            events: Arc::new(Mutex::new(Vec::new())),
            changed: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ServerEvent>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, e: ServerEvent) {
        let len = {
            let mut events = self.lock();
            if events.len() >= MAX_EVENTS {
                return;
            }
            events.push(e);
            events.len()
        };
        self.changed.send_replace(len);
    }

    fn find(&self, pred: &impl Fn(&ServerEvent) -> bool) -> Option<ServerEvent> {
        self.lock().iter().find(|e| pred(e)).cloned()
    }

    /// Whether every stream with a `db:verify` on it has ended.
    fn verify_streams_closed(&self) -> bool {
        let events = self.lock();
        events
            .iter()
            .filter(|e| matches!(e, ServerEvent::Verify { .. }))
            .all(|v| {
                events.iter().any(
                    |e| matches!(e, ServerEvent::Closed { stream, .. } if *stream == v.stream()),
                )
            })
    }

    /// Whether streams were seen, every one has ended, and none got as far
    /// as authentication or a dialback verification: the target gave up.
    fn all_given_up(&self) -> bool {
        let events = self.lock();
        let closed: Vec<u32> = events
            .iter()
            .filter(|e| matches!(e, ServerEvent::Closed { .. }))
            .map(ServerEvent::stream)
            .collect();
        !events.is_empty()
            && events.iter().all(|e| {
                closed.contains(&e.stream())
                    && !matches!(
                        e,
                        ServerEvent::Authenticated { .. } | ServerEvent::Verify { .. }
                    )
            })
    }
}

/// What every connection task of one server shares.
pub(crate) struct Ctx {
    pub env: PeerEnv,
    pub profile: PeerProfile,
    pub target: TargetInfo,
    pub log: EventLog,
}

/// A running peer server.
pub struct PeerServer {
    addr: SocketAddr,
    log: EventLog,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl PeerServer {
    /// Binds `bind` (use port 0) and starts accepting the target's streams.
    /// Fails early if the profile's certificates cannot be minted.
    pub async fn start(
        env: PeerEnv,
        profile: PeerProfile,
        bind: SocketAddr,
        target: TargetInfo,
    ) -> Result<PeerServer, PeerError> {
        env.server_leaf(&profile)?;
        env.leaf(&profile)?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| PeerError::Io(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| PeerError::Io(e.to_string()))?;
        let log = EventLog::new();
        let ctx = Arc::new(Ctx {
            env,
            profile,
            target,
            log: log.clone(),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, ctx, stopped));
        Ok(PeerServer {
            addr,
            log,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<ServerEvent> {
        self.log.lock().clone()
    }

    /// Whether every stream the target opened here has ended short of
    /// authentication or a dialback verification.
    pub fn target_gave_up(&self) -> bool {
        self.log.all_given_up()
    }

    /// Waits (at most `limit`) until every stream that carried a
    /// `db:verify` has ended: a verification stream is closed by the target
    /// right after its answer, and a transcript cut before that close
    /// depends on timing. Returns whether they all ended.
    pub async fn verify_streams_closed(&self, limit: Duration) -> bool {
        let until = crate::clock::tokio_deadline(limit);
        let mut changed = self.log.changed.subscribe();
        loop {
            if self.log.verify_streams_closed() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, changed.changed()).await.is_err() {
                return self.log.verify_streams_closed();
            }
        }
    }

    /// The first event (past or future) matching `pred`, waiting at most `wait`.
    pub async fn wait_for(
        &self,
        wait: Duration,
        pred: impl Fn(&ServerEvent) -> bool,
    ) -> Option<ServerEvent> {
        self.wait_until(wait, None, pred).await
    }

    /// The first event matching `pred`, waiting as long as this server keeps
    /// seeing activity: the wait ends `idle` after the last event, or at
    /// `limit`. A target slowed by load is still negotiating toward the peer
    /// and gets the time it needs; one that stopped talking has said all it
    /// will, and is not waited for longer than before. Once every stream
    /// the target opened has ended short of authentication, a third of
    /// `idle` without a new one settles it: a target that falls back to
    /// another address or port opens the next connection at once (RFC 6120
    /// §3.2.1).
    pub async fn wait_while_active(
        &self,
        idle: Duration,
        limit: Duration,
        pred: impl Fn(&ServerEvent) -> bool,
    ) -> Option<ServerEvent> {
        self.wait_until(limit, Some(idle), pred).await
    }

    /// Waits for `pred` until `limit`, or (with `idle`) until that long
    /// passes without a new event.
    async fn wait_until(
        &self,
        limit: Duration,
        idle: Option<Duration>,
        pred: impl Fn(&ServerEvent) -> bool,
    ) -> Option<ServerEvent> {
        let until = crate::clock::tokio_deadline(limit);
        // Subscribe before looking, so an event pushed in between still wakes us.
        let mut changed = self.log.changed.subscribe();
        loop {
            if let Some(e) = self.log.find(&pred) {
                return Some(e);
            }
            let mut left = until.saturating_duration_since(Instant::now());
            if let Some(idle) = idle {
                let quiet = if self.log.all_given_up() {
                    idle / 3
                } else {
                    idle
                };
                left = left.min(quiet);
            }
            match tokio::time::timeout(left, changed.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out, or the log is gone: one last look.
                _ => return self.log.find(&pred),
            }
        }
    }

    /// [`Self::wait_while_active`] for a stanza received on an authenticated
    /// stream that matches `pred`.
    pub async fn wait_for_stanza_while_active(
        &self,
        idle: Duration,
        limit: Duration,
        pred: impl Fn(&ElementSeen) -> bool,
    ) -> Option<ServerEvent> {
        self.wait_while_active(
            idle,
            limit,
            |e| matches!(e, ServerEvent::Stanza { stanza, .. } if pred(stanza)),
        )
        .await
    }

    /// The first stanza received on an authenticated stream that matches `pred`.
    pub async fn wait_for_stanza(
        &self,
        wait: Duration,
        pred: impl Fn(&ElementSeen) -> bool,
    ) -> Option<ServerEvent> {
        self.wait_for(
            wait,
            |e| matches!(e, ServerEvent::Stanza { stanza, .. } if pred(stanza)),
        )
        .await
    }

    /// Stops accepting, aborts every connection task and waits for them.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            // The accept loop aborts its connections and returns promptly;
            // the bound only guards against a wedged runtime.
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which aborts every
        // connection task; the listener closes with it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, mut stopped: oneshot::Receiver<()>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(inbound::serve(ctx.clone(), tcp));
                }
                // E.g. out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    conns.shutdown().await;
}
