//! The scenario's peer servers: one per domain the peer serves (its own and
//! `[peer] domains`), each placed in DNS per the scenario's DNS variant, each
//! with its own dialback secret shared by its initiating and authoritative
//! roles (XEP-0185).

use std::collections::BTreeMap;

use crate::peer::{PeerEnv, PeerProfile, TargetInfo};
use crate::run::Harness;
use crate::run::network::{self, Placed};
use crate::scenario::script::{Placeholder, Script, Template};
use crate::stream::Transcript;

use super::error::{PlayError, StepError};

/// The most the end of a scenario waits for the reference target to close
/// its verification streams; it does so within milliseconds.
const VERIFY_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One domain the peer serves.
pub(super) struct Entry {
    pub env: PeerEnv,
    pub profile: PeerProfile,
    pub placed: Placed,
}

pub(super) struct Peers {
    /// The scenario's own peer domain.
    pub domain: String,
    pub entries: BTreeMap<String, Entry>,
    pub target: TargetInfo,
    /// A peer environment with no server, for streams of other domains.
    pub base: PeerEnv,
}

impl Peers {
    pub async fn place(
        harness: &Harness,
        script: &Script,
        transcript: &Transcript,
    ) -> Result<Peers, PlayError> {
        let base = PeerEnv::new(harness.pki.clone(), transcript.clone())
            .map_err(PlayError::PeerEnv)?
            .with_step(harness.options.step);
        let target = TargetInfo {
            addr: harness.target.addr(),
            domain: harness.target_domain.clone(),
        };
        let domain = script.domain();
        let mut peers = Peers {
            domain: domain.clone(),
            entries: BTreeMap::new(),
            target,
            base,
        };
        let mut domains = vec![domain.clone()];
        for t in &script.peer.domains {
            domains.push(peers.domain_of(t).map_err(PlayError::PeerDomain)?);
        }
        for d in domains {
            if peers.entries.contains_key(&d) {
                continue;
            }
            let env = peers.base.for_another_peer().map_err(PlayError::PeerEnv)?;
            let spec = &script.peer;
            let profile = PeerProfile::new(d.clone(), spec.negotiation, spec.cert)
                .with_authzid(spec.authzid.clone())
                .with_verify_mode(spec.verify);
            let placed = match network::place(&env, &profile, peers.target.clone(), spec.dns).await
            {
                Ok(p) => p,
                Err(e) => {
                    peers.finish(harness).await;
                    return Err(PlayError::Place(e));
                }
            };
            // Recorded first, so that `finish` also undoes a half-done placement.
            let zone = placed.zone.clone();
            peers.entries.insert(
                d.clone(),
                Entry {
                    env,
                    profile,
                    placed,
                },
            );
            if let Some(zone) = zone
                && let Err(e) = harness.dns.upsert_zone(zone)
            {
                peers.finish(harness).await;
                return Err(PlayError::Zone(e));
            }
        }
        Ok(peers)
    }

    /// A domain template (`{peer}`, `{target}` only) made concrete.
    pub fn domain_of(&self, t: &Template) -> Result<String, StepError> {
        t.render(|p| match p {
            Placeholder::Peer => Ok(Some(self.domain.clone())),
            Placeholder::Target => Ok(Some(self.target.domain.clone())),
            other => Err(StepError::NotADomain(other.source())),
        })
        .map(|d| d.to_ascii_lowercase())
    }

    /// The peer server a domain template names, with that domain.
    pub fn entry_at(&self, t: &Template) -> Result<(String, &Entry), StepError> {
        let at = self.domain_of(t)?;
        match self.entries.get(&at) {
            Some(entry) => Ok((at, entry)),
            None => Err(StepError::NoPeerServer(at)),
        }
    }

    /// Stops every server and removes its DNS records.
    pub async fn finish(self, harness: &Harness) {
        // The reference target closes a verification stream right after its
        // answer; let that close reach the transcript (its snapshot) before
        // the servers go. Other targets may keep such streams open.
        if matches!(harness.target, crate::target::Target::Reference(_)) {
            for entry in self.entries.values() {
                entry
                    .placed
                    .server
                    .verify_streams_closed(VERIFY_CLOSE_WAIT)
                    .await;
            }
        }
        for (domain, entry) in self.entries {
            let had_zone = entry.placed.zone.is_some();
            entry.placed.server.shutdown().await;
            if had_zone {
                harness.dns.remove_zone(&domain);
            }
        }
    }
}
