//! What each step does on the wire. A step is `Met` with a short fact for
//! the report, `Unmet` with what was expected and what was observed, or an
//! `Err` when the harness itself could not carry it out (a scenario bug or a
//! broken environment, reported as `error`).

mod barrier;

use std::time::Duration;

use base64::Engine;

use super::error::StepError;
use super::live::{Live, Seen};
use super::peers::Peers;
use crate::dialback::Secret;
use crate::features::Features;
use crate::peer::{InitiatorReport, PeerProfile, ServerEvent, initiate};
use crate::pki::KeyType;
use crate::run::Harness;
use crate::scenario::script::pattern::{Captures, matches, parse_xml, present_children};
use crate::scenario::script::{Action, Feature, Placeholder, Script, Step, Template};
use crate::starttls;
use crate::stream::{Dir, EntryKind, XmppStream};
use crate::tls::{self, Transport};
use crate::xml::element::escape_attr;
use crate::xml::header::stream_error_condition;
use crate::xml::{Element, NS_TLS};

/// Closing our side at the end never waits longer than this.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

pub(super) enum Outcome {
    Met(String),
    Unmet { expected: String, observed: String },
}

fn unmet(expected: impl Into<String>, observed: impl Into<String>) -> Result<Outcome, StepError> {
    Ok(Outcome::Unmet {
        expected: expected.into(),
        observed: observed.into(),
    })
}

/// The state of one scenario while it plays.
pub(super) struct Run<'a> {
    harness: &'a Harness,
    script: &'a Script,
    peers: Peers,
    /// Connections in the order they were opened; steps act on the last.
    conns: Vec<Live>,
    captures: Captures,
    /// When the scenario began: what a shared local-user client received
    /// before belongs to other scenarios.
    started: tokio::time::Instant,
    /// Barriers sent so far (each gets its own id).
    barriers: usize,
    /// The step being played (1-based), for `waited`.
    pub step_no: usize,
    /// Steps that concluded because a bounded wait ran out: step, how
    /// long, why no earlier event could settle them.
    pub waits: Vec<(usize, Duration, String)>,
}

impl<'a> Run<'a> {
    pub fn new(harness: &'a Harness, script: &'a Script, peers: Peers) -> Run<'a> {
        Run {
            harness,
            script,
            peers,
            conns: Vec::new(),
            captures: Captures::new(),
            started: tokio::time::Instant::now(),
            barriers: 0,
            step_no: 0,
            waits: Vec::new(),
        }
    }

    /// Records that the current step concluded by waiting.
    fn waited(&mut self, how_long: Duration, why: impl Into<String>) {
        self.waits.push((self.step_no, how_long, why.into()));
    }

    /// A scenario-level note in the transcript (stream 0).
    pub fn note(&self, text: String) {
        self.peers
            .base
            .transcript
            .record(0, Dir::Sent, false, EntryKind::Note, text);
    }

    /// After `step` was not met: why the connection later steps act on can
    /// no longer carry them, if it cannot. A failed `connect`, `starttls` or
    /// `authenticate` leaves none (or one in an unknown state); otherwise it
    /// is gone once the target ended it.
    pub fn connection_gone(&self, step: &Step) -> Option<String> {
        match step.action {
            Action::Connect { .. } => Some("its connection could not be opened".into()),
            Action::StartTls { .. } => Some("the STARTTLS negotiation did not complete".into()),
            Action::Open => Some("no new stream could be opened".into()),
            Action::Authenticate {
                expect_success: true,
                ..
            } => Some("the authenticated connection could not be set up".into()),
            _ => self
                .conns
                .last()
                .and_then(|c| c.ended.as_ref())
                .map(|how| format!("the target ended the stream ({how})")),
        }
    }

    pub fn any_tls(&self) -> bool {
        self.conns.iter().any(|c| c.stream.is_tls())
    }

    /// Closes every connection and stops the peer servers.
    pub async fn finish(mut self) {
        for live in &mut self.conns {
            let _ = tokio::time::timeout(CLOSE_WAIT, live.stream.close()).await;
        }
        self.peers.finish(self.harness).await;
    }

    fn wait(&self, step: &Step) -> Duration {
        step.timeout.unwrap_or(self.harness.options.step)
    }

    fn current(&mut self) -> Result<&mut Live, StepError> {
        self.conns.last_mut().ok_or(StepError::NoConnection)
    }

    pub async fn step(&mut self, step: &Step) -> Result<Outcome, StepError> {
        let wait = self.wait(step);
        match &step.action {
            Action::Connect {
                from,
                to,
                header,
                direct_tls,
            } => {
                let (from, to) = (self.peers.domain_of(from)?, self.peers.domain_of(to)?);
                self.connect(from, to, *header, *direct_tls, wait).await
            }
            Action::Open => {
                let to = self.peers.target.domain.clone();
                let live = self.current()?;
                // After SASL success the parser restarts (RFC 6120 §6.4.6);
                // after TLS it is fresh already.
                if live.stream.peer_header().is_some() {
                    live.stream
                        .restart()
                        .map_err(|e| StepError::Setup(e.to_string()))?;
                }
                // A target that has closed the connection makes this unmet,
                // not a harness error.
                match live.open(&to, wait).await {
                    Ok(seen) => Ok(Outcome::Met(seen)),
                    Err(e) => unmet("to open a new stream", e.to_string()),
                }
            }
            Action::Send(t) => self.send(t).await,
            Action::SendRaw { text, pad_to } => self.send_raw(text, *pad_to).await,
            Action::StartTls { pipeline } => self.starttls(pipeline.as_ref(), wait).await,
            Action::Authenticate {
                from,
                expect_success,
            } => {
                let from = self.peers.domain_of(from)?;
                self.authenticate(from, *expect_success).await
            }
            Action::Expect { patterns, exact } => self.expect(patterns, *exact, wait).await,
            Action::ExpectStreamError(conditions) => {
                let seen = self.current()?.read_past_headers(wait).await;
                // `*` accepts any condition: where the text requires a stream
                // error but only recommends which one (RFC 6120 §11.1).
                let want = if conditions.iter().any(|w| w == ANY_CONDITION) {
                    "a stream error (any condition)".to_string()
                } else {
                    format!("a stream error <{}/>", conditions.join("/> or <"))
                };
                match &seen {
                    Seen::Element(e) => match stream_error_condition(e) {
                        Some(c) if conditions.iter().any(|w| w == c || w == ANY_CONDITION) => {
                            Ok(Outcome::Met(format!("stream error <{c}/>")))
                        }
                        _ => unmet(want, seen.describe()),
                    },
                    Seen::Timeout => unmet(want, format!("nothing within {wait:?}")),
                    other => unmet(want, other.describe()),
                }
            }
            Action::ExpectVersion(version) => {
                let want = format!("a response stream header with version='{version}'");
                match self.current()?.read(wait).await {
                    Seen::Header(h) if h.version.as_deref() == Some(version.as_str()) => {
                        Ok(Outcome::Met(format!("response header version='{version}'")))
                    }
                    Seen::Timeout => unmet(want, format!("nothing within {wait:?}")),
                    other => unmet(want, other.describe()),
                }
            }
            Action::ExpectClose => match self.current()?.read_past_headers(wait).await {
                Seen::Closed(how) => Ok(Outcome::Met(format!("closed ({how})"))),
                Seen::Timeout => unmet(
                    "the target to close the stream",
                    format!("the stream still open after {wait:?}"),
                ),
                other => unmet("the target to close the stream", other.describe()),
            },
            Action::ExpectNothing(quiet) => match self.current()?.read(*quiet).await {
                Seen::Timeout => {
                    self.waited(*quiet, "silence on a stream is shown only by waiting");
                    Ok(Outcome::Met(format!("nothing for {quiet:?}")))
                }
                other => unmet(format!("nothing for {quiet:?}"), other.describe()),
            },
            Action::ExpectDelivery {
                id,
                at,
                delivered: true,
            } => self.delivery(id, at, step).await,
            Action::ExpectDelivery {
                id,
                at,
                delivered: false,
            } => {
                let id = id.render(|p| self.fill(p, false))?;
                let wait = step.timeout.unwrap_or(self.harness.options.delivery_wait);
                self.no_delivery(id, at, wait).await
            }
            Action::ExpectStanza {
                pattern,
                exact,
                absent,
                at,
            } => self.stanza(pattern, *exact, absent, at, step).await,
            Action::ExpectFeature { feature, present } => {
                let live = self.current()?;
                let Some(features) = &live.features else {
                    let instead = live.instead_of_features.as_deref().unwrap_or("nothing");
                    return unmet(
                        "stream features",
                        format!("no <stream:features/> on this stream, but {instead}"),
                    );
                };
                let has = has_feature(features, feature);
                let name = feature_name(feature);
                // As received where we have it; rebuilt from what the peer read otherwise.
                let seen = live
                    .features_xml
                    .clone()
                    .unwrap_or_else(|| features.to_element().to_string());
                match (has, *present) {
                    (true, true) => Ok(Outcome::Met(format!("{name} offered"))),
                    (false, false) => Ok(Outcome::Met(format!("{name} not offered"))),
                    (false, true) => unmet(
                        format!("{name} among the features"),
                        format!("features {seen}"),
                    ),
                    (true, false) => unmet(
                        format!("no {name} among the features"),
                        format!("features {seen}"),
                    ),
                }
            }
            Action::Close => {
                let live = self.current()?;
                let _ = tokio::time::timeout(wait, live.stream.close()).await;
                Ok(Outcome::Met("closed our side".into()))
            }
            Action::Wait(d) => {
                tokio::time::sleep(*d).await;
                self.waited(*d, "a pause written in the scenario");
                Ok(Outcome::Met(format!("waited {d:?}")))
            }
        }
    }

    // ----- placeholders ------------------------------------------------

    /// Values for the placeholders every context shares; `None` keeps one.
    fn fill(&self, p: &Placeholder, keep_captures: bool) -> Result<Option<String>, StepError> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        Ok(Some(match p {
            Placeholder::Peer => self.peers.domain.clone(),
            Placeholder::Target => self.peers.target.domain.clone(),
            Placeholder::StreamId => self
                .conns
                .last()
                .and_then(|c| c.stream_id.clone())
                .unwrap_or_default(),
            Placeholder::PeerBase64 => b64(&self.peers.domain),
            Placeholder::Base64(t) => b64(t),
            Placeholder::Capture(_) if keep_captures => return Ok(None),
            Placeholder::Capture(n) => self
                .captures
                .get(n)
                .cloned()
                .ok_or_else(|| StepError::NotCaptured(n.clone()))?,
            Placeholder::Any
            | Placeholder::Absent
            | Placeholder::DialbackKey
            | Placeholder::Padding => return Ok(None),
        }))
    }

    /// Renders XML: values are escaped for attribute or text positions.
    fn render_xml(&self, t: &Template, keep_captures: bool) -> Result<String, StepError> {
        t.render(|p| {
            Ok(self.fill(p, keep_captures)?.map(|v| {
                let mut out = String::new();
                escape_attr(&v, &mut out);
                out
            }))
        })
    }

    // ----- steps ------------------------------------------------------

    async fn connect(
        &mut self,
        from: String,
        to: String,
        header: bool,
        direct_tls: bool,
        wait: Duration,
    ) -> Result<Outcome, StepError> {
        let env = &self.peers.base;
        let addr = if direct_tls {
            match self.harness.target.direct_tls_addr() {
                Ok(addr) => addr,
                Err(why) => return unmet("a direct-TLS port of the target (XEP-0368 §3)", why),
            }
        } else {
            self.peers.target.addr
        };
        let no = env.streams.next();
        let stream = if direct_tls {
            let leaf = self.leaf(&from)?;
            let (config, _recorder) =
                tls::client_config(&env.roots, leaf.as_deref(), Transport::DirectTls)
                    .map_err(|e| StepError::Setup(e.to_string()))?;
            let name = tls::server_name(&self.peers.target.domain)
                .map_err(|e| StepError::Setup(e.to_string()))?;
            let attempt = XmppStream::connect_direct_tls(
                addr,
                config,
                name,
                env.limits,
                env.transcript.clone(),
                no,
            );
            match tokio::time::timeout(wait, attempt).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return unmet("a direct TLS handshake (XEP-0368)", e.to_string()),
                Err(_) => return unmet("a direct TLS handshake (XEP-0368)", "a timeout"),
            }
        } else {
            let attempt = XmppStream::connect(addr, env.limits, env.transcript.clone(), no);
            match tokio::time::timeout(wait, attempt).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return unmet(format!("a connection to {addr}"), e.to_string()),
                Err(_) => return unmet(format!("a connection to {addr}"), "a timeout"),
            }
        };
        let mut live = Live::new(stream, from);
        let peer = PeerProfile::new("", self.script.peer.negotiation, self.script.peer.cert);
        live.declares_dialback = peer.advertises_dialback();
        let fact = if header {
            match live.open(&to, wait).await {
                Ok(fact) => fact,
                Err(e) => return unmet("to open a stream", e.to_string()),
            }
        } else {
            "connected, no header sent".into()
        };
        self.conns.push(live);
        Ok(Outcome::Met(fact))
    }

    /// The certificate the peer presents for `domain` (its profile's variant).
    fn leaf(&self, domain: &str) -> Result<Option<std::sync::Arc<crate::pki::Leaf>>, StepError> {
        self.peers
            .base
            .pki
            .leaf(domain, self.script.peer.cert, KeyType::Ecdsa)
            .map_err(|e| StepError::Setup(e.to_string()))
    }

    async fn send(&mut self, t: &Template) -> Result<Outcome, StepError> {
        let text = self.render_xml(t, false)?;
        let mut element = parse_xml(&text).map_err(StepError::XmlToSend)?;
        if t.holes().any(|p| *p == Placeholder::DialbackKey) {
            let key = self.dialback_key(&element);
            let text = t.render(|p| match p {
                Placeholder::DialbackKey => Ok::<_, StepError>(Some(key.clone())),
                other => Ok(self.fill(other, false)?.map(|v| {
                    let mut out = String::new();
                    escape_attr(&v, &mut out);
                    out
                })),
            })?;
            element = parse_xml(&text).map_err(StepError::XmlToSend)?;
        }
        let wait = self.harness.options.step;
        let live = self.current()?;
        // A refused write is not judged here: the expectations that follow
        // say whether the target was right to stop reading. A target that
        // stops reading without closing must not hang us, hence the bound.
        let sent = tokio::time::timeout(wait, live.stream.send(&element)).await;
        Ok(Outcome::Met(match sent {
            Ok(Ok(())) => format!("sent <{}/>", element.name),
            Ok(Err(e)) => format!("could not send <{}/>: {e}", element.name),
            Err(_) => format!("could not send <{}/> within {wait:?}", element.name),
        }))
    }

    /// XEP-0185 key for the `db:result` about to be sent: its `from` as the
    /// originating domain (the current stream's when absent), its `to` as the
    /// receiving one, and the current stream id. A domain the peer does not
    /// serve gets a key from a secret nobody can verify (a spoof).
    fn dialback_key(&self, e: &Element) -> String {
        let live = self.conns.last();
        let from = e
            .attr("from")
            .map(str::to_owned)
            .or_else(|| live.map(|l| l.from.clone()))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let to = e
            .attr("to")
            .map(str::to_owned)
            .unwrap_or_else(|| self.peers.target.domain.clone());
        let id = live.and_then(|l| l.stream_id.clone()).unwrap_or_default();
        match self.peers.entries.get(&from) {
            Some(entry) => entry.env.secret.key(&to, &from, &id),
            // Without a random secret the spoof is keyed by a fixed one: the
            // domain's authoritative server (the peer) knows neither.
            None => Secret::random()
                .unwrap_or_else(|_| Secret::new("s2spec spoof"))
                .key(&to, &from, &id),
        }
    }

    async fn send_raw(
        &mut self,
        t: &Template,
        pad_to: Option<usize>,
    ) -> Result<Outcome, StepError> {
        let bare = t.render(|p| match p {
            Placeholder::Padding => Ok(Some(String::new())),
            other => self.fill(other, false),
        })?;
        let text = match pad_to {
            None => bare,
            Some(total) => {
                let fill = total
                    .checked_sub(bare.len())
                    .ok_or(StepError::PadTooSmall(total))?;
                let padding = "x".repeat(fill);
                t.render(|p| match p {
                    Placeholder::Padding => Ok(Some(padding.clone())),
                    other => self.fill(other, false),
                })?
            }
        };
        let wait = self.harness.options.step;
        let live = self.current()?;
        let sent = tokio::time::timeout(wait, live.stream.send_raw(text.as_bytes())).await;
        Ok(Outcome::Met(match sent {
            Ok(Ok(())) => format!("sent {} raw bytes", text.len()),
            Ok(Err(e)) => format!("could not send {} raw bytes: {e}", text.len()),
            Err(_) => format!("could not send {} raw bytes within {wait:?}", text.len()),
        }))
    }

    async fn starttls(
        &mut self,
        pipeline: Option<&Template>,
        wait: Duration,
    ) -> Result<Outcome, StepError> {
        let extra = match pipeline {
            Some(t) => t.render(|p| self.fill(p, false))?,
            None => String::new(),
        };
        let from = self.current()?.from.clone();
        let leaf = self.leaf(&from)?;
        let (config, _recorder) =
            tls::client_config(&self.peers.base.roots, leaf.as_deref(), Transport::StartTls)
                .map_err(|e| StepError::Setup(e.to_string()))?;
        let target = self.peers.target.domain.clone();
        let name = tls::server_name(&target).map_err(|e| StepError::Setup(e.to_string()))?;
        let live = self.current()?;
        // One write, so that the pipelined bytes arrive with <starttls/>.
        let bytes = format!("<starttls xmlns='{NS_TLS}'/>{extra}");
        match tokio::time::timeout(wait, live.stream.send_raw(bytes.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return unmet("to send <starttls/>", e.to_string()),
            Err(_) => return unmet("to send <starttls/>", "a write timeout"),
        }
        match live.read_past_headers(wait).await {
            Seen::Element(e) if starttls::is_proceed(&e) => {}
            other => return unmet("<proceed/>", other.describe()),
        }
        match tokio::time::timeout(wait, live.stream.starttls_client(config, name)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return unmet("a TLS handshake", e.to_string()),
            Err(_) => return unmet("a TLS handshake", "a timeout"),
        }
        // The target may close right after the handshake: that is its
        // answer (graded), not trouble of the harness.
        match live.open(&target, wait).await {
            Ok(seen) => Ok(Outcome::Met(format!("TLS up; {seen}"))),
            Err(e) => unmet("a stream header sent over TLS", e.to_string()),
        }
    }

    async fn authenticate(
        &mut self,
        from: String,
        expect_success: bool,
    ) -> Result<Outcome, StepError> {
        let spec = &self.script.peer;
        let (env, profile) = match self.peers.entries.get(&from) {
            Some(entry) => (entry.env.clone(), entry.profile.clone()),
            None => (
                self.peers
                    .base
                    .for_another_peer()
                    .map_err(|e| StepError::Setup(e.to_string()))?,
                PeerProfile::new(from.clone(), spec.negotiation, spec.cert)
                    .with_authzid(spec.authzid.clone())
                    .with_verify_mode(spec.verify),
            ),
        };
        let target = self.peers.target.clone();
        let mut initiated = initiate(&env, &profile, target.addr, &target.domain).await;
        let summary = summary(&initiated.report);
        match (initiated.stream.take(), expect_success) {
            (Some(stream), true) => {
                let r = &initiated.report;
                let mut live = Live::new(stream, from);
                live.stream_id = r.headers.last().and_then(|h| h.id.clone());
                let seen = r
                    .features_sasl
                    .as_ref()
                    .or(r.features_tls.as_ref())
                    .or(r.features_clear.as_ref());
                live.features = seen.map(|f| Features {
                    starttls: f.starttls,
                    mechanisms: f.mechanisms.clone(),
                    empty_mechanisms: f.empty_mechanisms,
                    dialback: f.dialback,
                    other: f.other.iter().filter_map(|n| other_feature(n)).collect(),
                });
                self.conns.push(live);
                Ok(Outcome::Met(summary))
            }
            (None, true) => unmet(format!("{from} to authenticate"), summary),
            (Some(mut stream), false) => {
                let _ = tokio::time::timeout(CLOSE_WAIT, stream.close()).await;
                unmet(format!("{from} not to be authenticated"), summary)
            }
            (None, false) => Ok(Outcome::Met(summary)),
        }
    }

    async fn expect(
        &mut self,
        patterns: &[Template],
        exact: bool,
        wait: Duration,
    ) -> Result<Outcome, StepError> {
        let mut rendered = Vec::new();
        for t in patterns {
            let text = self.render_xml(t, true)?;
            let p = parse_xml(&text).map_err(StepError::Pattern)?;
            rendered.push((text, p));
        }
        let want = rendered
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        let seen = self.current()?.read_past_headers(wait).await;
        let e = match &seen {
            Seen::Element(e) => e,
            Seen::Timeout => return unmet(want, format!("nothing within {wait:?}")),
            other => return unmet(want, other.describe()),
        };
        let mut why = Vec::new();
        for (_, p) in &rendered {
            match matches(p, e, exact, &self.captures) {
                Ok(c) => {
                    self.captures = c;
                    return Ok(Outcome::Met(format!("got {}", seen.describe())));
                }
                Err(w) => why.push(w.to_string()),
            }
        }
        unmet(want, format!("{} ({})", seen.describe(), why.join("; ")))
    }

    async fn delivery(
        &mut self,
        id: &Template,
        at: &Template,
        step: &Step,
    ) -> Result<Outcome, StepError> {
        let id = id.render(|p| self.fill(p, false))?;
        let wait = step.timeout.unwrap_or(self.harness.options.delivery_wait);
        // The one hook between the two ways of observing delivery: a managed
        // server's own users see it at their clients.
        if let Some(users) = self.harness.target.local_users() {
            let users = users.map_err(|e| StepError::LocalUsers(e.to_owned()))?;
            return self.delivery_at_clients(users, id, wait).await;
        }
        let (at, entry) = self.peers.entry_at(at)?;
        // The echo (or any non-error stanza with the id) proves delivery;
        // an error reply with the id proves the opposite.
        let found = entry
            .placed
            .server
            .wait_for_stanza(wait, |s| {
                s.id.as_deref() == Some(id.as_str()) && s.ty.as_deref() != Some("error")
            })
            .await;
        let what = format!("the stanza with id '{id}' echoed back to {at}");
        match found {
            Some(ServerEvent::Stanza { stanza, .. }) => {
                Ok(Outcome::Met(format!("delivered: {}", stanza.xml)))
            }
            Some(_) => Err(StepError::UnexpectedEvent),
            None => {
                let seen = received(entry, &at);
                self.waited(wait, format!("{what} did not come"));
                unmet(what, format!("nothing within {wait:?}{seen}"))
            }
        }
    }

    /// Delivery seen at the local users' clients: a non-error stanza with
    /// the id, from this scenario's peer (or a sub-domain of it, or with no
    /// `from`), since the scenario began.
    async fn delivery_at_clients(
        &mut self,
        users: &crate::c2s::Users,
        id: String,
        wait: Duration,
    ) -> Result<Outcome, StepError> {
        let sessions = users
            .online()
            .await
            .map_err(|e| StepError::Setup(e.to_string()))?;
        let peer = self.peers.domain.clone();
        let mut waits = tokio::task::JoinSet::new();
        for session in &sessions {
            let (session, id, peer, since) =
                (session.clone(), id.clone(), peer.clone(), self.started);
            waits.spawn(async move {
                let fits = |e: &Element| {
                    e.attr("id") == Some(id.as_str())
                        && e.attr("type") != Some("error")
                        && e.attr("from").is_none_or(|f| from_domain(f, &peer))
                };
                let got = session.wait_for(since, wait, fits).await;
                got.map(|r| (session.jid().to_string(), r.xml))
            });
        }
        let mut found = None;
        while let Some(joined) = waits.join_next().await {
            if let Ok(Some(hit)) = joined {
                found = Some(hit);
                break;
            }
        }
        waits.abort_all();
        // A client that went away saw nothing, which proves nothing.
        if found.is_none()
            && let Some(gone) = sessions.iter().find(|s| !s.is_open())
        {
            return Err(StepError::ClientOffline {
                jid: gone.jid().to_string(),
                why: gone.ended().unwrap_or_default().to_string(),
            });
        }
        let jids: Vec<&str> = sessions.iter().map(|s| s.bare()).collect();
        let what = format!(
            "the stanza with id '{id}' at the client of {}",
            jids.join(" or ")
        );
        match found {
            Some((jid, xml)) => {
                self.note(format!("{jid} received {xml}"));
                Ok(Outcome::Met(format!("delivered to {jid}: {xml}")))
            }
            None => {
                let seen: Vec<String> = sessions
                    .iter()
                    .flat_map(|s| s.received_since(self.started))
                    .map(|r| r.xml)
                    .collect();
                let tail = seen.len().saturating_sub(4);
                let seen = if seen.is_empty() {
                    "; the clients received nothing".to_string()
                } else {
                    format!("; the clients received: {}", seen[tail..].join(" "))
                };
                self.waited(wait, format!("{what} did not come"));
                unmet(what, format!("nothing within {wait:?}{seen}"))
            }
        }
    }

    async fn stanza(
        &mut self,
        pattern: &Template,
        exact: bool,
        absent: &[String],
        at: &Template,
        step: &Step,
    ) -> Result<Outcome, StepError> {
        let text = self.render_xml(pattern, true)?;
        let p = parse_xml(&text).map_err(StepError::Pattern)?;
        let (at, entry) = self.peers.entry_at(at)?;
        let wait = step.timeout.unwrap_or(self.harness.options.delivery_wait);
        let caps = self.captures.clone();
        let fits = |e: &Element| {
            matches(&p, e, exact, &caps).is_ok() && present_children(e, absent).is_none()
        };
        let found = entry
            .placed
            .server
            .wait_for_stanza(wait, |s| fits(&s.element))
            .await;
        let mut want = format!("{text} at {at}");
        if !absent.is_empty() {
            want.push_str(&format!(" without <{}/>", absent.join("/>, <")));
        }
        match found {
            Some(ServerEvent::Stanza { stanza, .. }) => {
                if let Ok(c) = matches(&p, &stanza.element, exact, &self.captures) {
                    self.captures = c;
                }
                Ok(Outcome::Met(format!("received {}", stanza.xml)))
            }
            Some(_) => Err(StepError::UnexpectedEvent),
            None => {
                let seen = received(entry, &at);
                self.waited(wait, format!("{want} did not come"));
                unmet(want, format!("no such stanza within {wait:?}{seen}"))
            }
        }
    }
}

/// Whether the JID `jid` is of `domain` or a sub-domain of it.
fn from_domain(jid: &str, domain: &str) -> bool {
    let host = jid.split('/').next().unwrap_or(jid);
    let host = host.rsplit('@').next().unwrap_or(host).to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// The `expect-stream-error` value that accepts every condition.
const ANY_CONDITION: &str = "*";

/// What a peer server did receive, for messages.
fn received(entry: &super::peers::Entry, at: &str) -> String {
    let stanzas: Vec<String> = entry
        .placed
        .server
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Stanza { stanza, .. } => Some(stanza.xml),
            _ => None,
        })
        .collect();
    if stanzas.is_empty() {
        return format!("; {at} received no stanza");
    }
    let tail = stanzas.len().saturating_sub(4);
    format!("; {at} received: {}", stanzas[tail..].join(" "))
}

fn summary(r: &InitiatorReport) -> String {
    if let Some(m) = r.method {
        return format!("authenticated with {m}");
    }
    let mut parts = Vec::new();
    if let Some(e) = &r.stream_error {
        parts.push(format!("stream error <{e}/>"));
    }
    if let Some(s) = &r.sasl {
        parts.push(format!("SASL {s:?}"));
    }
    if let Some(d) = &r.dialback {
        parts.push(format!("dialback {d:?}"));
    }
    if let Some(g) = r.gave_up {
        parts.push(format!("the peer gave up ({g:?})"));
    }
    if let Some(f) = &r.failure {
        parts.push(format!("stopped at {:?}: {:?}", f.stage, f.failure));
    }
    format!("not authenticated: {}", parts.join(", "))
}

/// `{ns}name` back to an element.
fn other_feature(n: &str) -> Option<Element> {
    let (ns, name) = n.strip_prefix('{')?.split_once('}')?;
    Some(Element::new(ns, name))
}

fn has_feature(f: &Features, feature: &Feature) -> bool {
    match feature {
        Feature::StartTls => f.starttls.is_some(),
        Feature::StartTlsRequired => f.starttls == Some(true),
        Feature::External => f.offers_external(),
        // An empty <mechanisms/> offers no mechanism (RFC 6120 §6.4.1: one
        // child "for each authentication mechanism the receiving entity
        // offers"); the matrix judge reports the element as advisory.
        Feature::Sasl => !f.mechanisms.is_empty(),
        Feature::Dialback => f.dialback,
        Feature::Other { ns, name } => f.other.iter().any(|e| e.is(ns, name)),
    }
}

fn feature_name(feature: &Feature) -> String {
    match feature {
        Feature::StartTls => "<starttls/>".into(),
        Feature::StartTlsRequired => "<starttls><required/></starttls>".into(),
        Feature::External => "SASL EXTERNAL".into(),
        Feature::Sasl => "<mechanisms/>".into(),
        Feature::Dialback => "the dialback feature".into(),
        Feature::Other { ns, name } => format!("<{name} xmlns='{ns}'/>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sasl` means any `<mechanisms/>`, the empty (malformed) one included.
    #[test]
    fn an_empty_mechanisms_element_offers_no_mechanism() {
        let empty = Features {
            empty_mechanisms: true,
            ..Features::default()
        };
        assert!(!has_feature(&empty, &Feature::Sasl));
        let external = Features {
            mechanisms: vec!["EXTERNAL".into()],
            ..Features::default()
        };
        assert!(has_feature(&external, &Feature::Sasl));
        assert!(!has_feature(&empty, &Feature::External));
        assert!(!has_feature(&Features::default(), &Feature::Sasl));
    }
}
