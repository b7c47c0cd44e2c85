//! A run against a managed real server: the cases are planned into
//! configuration groups (the pure decision of `target::profile`), one
//! instance runs per group, three groups at a time, and cases the server
//! cannot be configured for come back `not-applicable` with the reason.
//! Every instance is stopped before [`run_managed`] returns, or when it is
//! dropped (the instance guards of `target::managed`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Harness, HarnessError, LOOPBACK_ANY_PORT, Options, TARGET_DOMAIN, case_dns, lost_case, network,
};
use crate::oracle::{Policy, expect};
use crate::pki::{CertVariant, KeyType, Pki};
use crate::report::{CaseResult, Verdict};
use crate::scenario::script::Need;
use crate::scenario::{Case, CaseKind};
use crate::target::managed::{ManagedServer, Setup};
use crate::target::profile::{
    Accounts, Decision, DnsHookup, Group, Profile, candidates, needs_local_users,
};
use crate::target::{LocalUsers, Managed, Target};

/// Where a managed run's server logs go.
#[derive(Debug, Clone, Default)]
pub struct ManagedOptions {
    /// Keep each instance's log here as `<group>.log`.
    pub keep_logs: Option<PathBuf>,
}

/// Runs `cases` against the server of `profile`: one instance per
/// configuration group, two at a time. A group whose server does not
/// start gives each of its cases an `error` naming the cause; the other
/// groups still run.
pub async fn run_managed(
    profile: &Profile,
    cases: Vec<Case>,
    options: Options,
    managed: ManagedOptions,
    done: impl Fn(&CaseResult) + Send + Sync + Clone + 'static,
) -> Result<Vec<CaseResult>, super::execute::RunError> {
    if let Some(why) = profile.unavailable() {
        return Err(super::execute::RunError::Unavailable(why));
    }
    let plan = plan(profile, &cases, options.policy);
    let mut results = Vec::new();
    for (case, reason) in plan.not_applicable {
        let r = not_applicable(&case, reason, options.policy);
        done(&r);
        results.push(r);
    }
    // Groups run three at a time, the largest first: a group's wall time is
    // mostly the server's own timers, not CPU, and each instance has its own
    // ports, directory and DNS, so they do not disturb each other. Three
    // keep ejabberd's five lync groups within 20 s on two cores (two: 22 s)
    // with the same verdicts.
    let mut groups: Vec<(Group, Vec<Case>)> = plan.groups.into_iter().collect();
    groups.sort_by_key(|(_, cases)| std::cmp::Reverse(cases.len()));
    let queue = std::sync::Mutex::new(std::collections::VecDeque::from(groups));
    // An instance that played its cases stops in the background (ejabberd
    // takes a second to exit), so the next group need not wait for it;
    // every one is awaited before the run returns.
    let stopping = std::sync::Mutex::new(Vec::new());
    let worker = || async {
        let mut out = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            let Some((group, cases)) = next else {
                return out;
            };
            let (played, harness) =
                run_group(profile, group, cases, &options, &managed, done.clone()).await;
            out.extend(played);
            if let Some(h) = harness {
                let stop = tokio::spawn(h.shutdown());
                stopping
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(stop);
            }
        }
    };
    let (a, b, c) = tokio::join!(worker(), worker(), worker());
    results.extend(a.into_iter().chain(b).chain(c));
    let stopping = std::mem::take(&mut *stopping.lock().unwrap_or_else(|e| e.into_inner()));
    for stop in stopping {
        // A panicked stop task dropped its harness, whose guards kill the
        // processes all the same.
        let _ = stop.await;
    }
    Ok(results)
}

/// One configuration group on its own instance; the instance comes back
/// for the caller to stop (dropping it stops it too).
async fn run_group(
    profile: &Profile,
    group: Group,
    cases: Vec<Case>,
    options: &Options,
    managed: &ManagedOptions,
    done: impl Fn(&CaseResult) + Send + Sync + Clone + 'static,
) -> (Vec<CaseResult>, Option<Harness>) {
    let partners = partner_domains(&cases);
    let needs_users = cases.iter().any(|c| match &c.kind {
        CaseKind::Script(s) => needs_local_users(s),
        _ => false,
    });
    let clock = std::time::Instant::now();
    let started = Harness::start_managed(
        profile,
        group,
        &partners,
        options.clone(),
        managed.keep_logs.clone(),
        needs_users,
    )
    .await;
    let harness = match started {
        Ok(harness) => harness,
        // The other groups may still run; these cases say why they did not.
        Err(e) => {
            let why = format!(
                "harness error: {} ({group}) did not start: {e}",
                profile.name
            );
            let lost = cases
                .iter()
                .map(|case| {
                    let r = lost_case(case, why.clone());
                    done(&r);
                    r
                })
                .collect();
            return (lost, None);
        }
    };
    let ready = clock.elapsed();
    let harness = Arc::new(harness);
    let count = cases.len();
    let results = harness.run(cases, done).await;
    // Where a managed run's wall time goes (RUST_LOG=s2spec=info).
    tracing::info!(
        target = %profile.name,
        %group,
        cases = count,
        ready_ms = ready.as_millis() as u64,
        played_ms = (clock.elapsed() - ready).as_millis() as u64,
        "configuration group played"
    );
    // Every case task has ended, so the harness has no other owner left;
    // if one did, dropping it here still stops the instance (its guards).
    (results, Arc::try_unwrap(harness).ok())
}

/// Cases split into groups (in a stable order) and not-applicable ones.
#[derive(Debug, Default)]
pub struct Plan {
    pub groups: BTreeMap<Group, Vec<Case>>,
    pub not_applicable: Vec<(Case, String)>,
}

/// Places every case: a case that can run in one group only goes there; one
/// that holds in several (a scenario listing configurations in which, say,
/// SASL plays no part) joins a group that runs anyway, so it costs no
/// further instance, else the first it lists. Pure.
pub fn plan(profile: &Profile, cases: &[Case], policy: Policy) -> Plan {
    let caps = &profile.capabilities;
    let mut out = Plan::default();
    let mut flexible = Vec::new();
    for case in cases {
        if let CaseKind::Script(s) = &case.kind
            && s.needs.contains(&Need::LocalUsers)
            && profile.accounts.is_none()
        {
            let why = format!(
                "the scenario needs local-users (its `needs`): the profile of {} lists no \
                 `[accounts]`",
                profile.name
            );
            out.not_applicable.push((case.clone(), why));
            continue;
        }
        match candidates(caps, case, policy) {
            Err(reason) => out.not_applicable.push((case.clone(), reason.to_string())),
            Ok(groups) if groups.len() == 1 => {
                out.groups.entry(groups[0]).or_default().push(case.clone())
            }
            Ok(groups) => flexible.push((case, groups)),
        }
    }
    for (case, groups) in flexible {
        let group = groups
            .iter()
            .find(|g| out.groups.contains_key(g))
            .unwrap_or(&groups[0]);
        out.groups.entry(*group).or_default().push(case.clone());
    }
    out
}

/// The decision for one case (the group it runs in, or why not), as the
/// plan of that case alone would make it.
pub fn decide_alone(profile: &Profile, case: &Case, policy: Policy) -> Decision {
    match candidates(&profile.capabilities, case, policy) {
        Ok(groups) => Decision::Run(groups[0]),
        Err(reason) => Decision::NotApplicable(reason.to_string()),
    }
}

/// The peer domains of the pairing cases and the partner scenarios: the
/// partners an instance knows.
fn partner_domains(cases: &[Case]) -> Vec<String> {
    let mut domains: Vec<String> = cases
        .iter()
        .filter_map(|c| match &c.kind {
            CaseKind::Pairing(p) => Some(crate::scenario::peer_domain(p)),
            CaseKind::Script(s) if s.partner.is_some() => Some(s.domain()),
            _ => None,
        })
        .collect();
    domains.sort();
    domains.dedup();
    domains
}

fn not_applicable(case: &Case, reason: String, policy: Policy) -> CaseResult {
    let expected = match &case.kind {
        CaseKind::Pairing(p) => Some(super::judge::expected_of(&expect(p, policy))),
        CaseKind::Stranger { .. } => Some(super::judge::stranger_expected()),
        CaseKind::Config(_) | CaseKind::Script(_) => None,
    };
    CaseResult {
        id: case.id.clone(),
        family: case.family.clone(),
        description: case.description.clone(),
        verdict: Verdict::NotApplicable,
        expected,
        observed: None,
        messages: vec![reason],
        deviations: Vec::new(),
        duration_ms: 0,
        waited: Vec::new(),
        transcript: Vec::new(),
    }
}

/// The deadline of each wait of a local user's login: a one-time cost per
/// instance, and a fresh ejabberd's first c2s TLS handshake took more than
/// the 5 s step deadline on the loaded 2-core machine.
fn login_wait(options: &Options) -> Duration {
    options.step.max(Duration::from_secs(20))
}

/// Creates a managed server's accounts and logs each in over c2s. A failure
/// is kept as the reason the cases that need a local user give.
async fn provision_users(
    server: &ManagedServer,
    accounts: &Accounts,
    root: &rustls_pki_types::CertificateDer<'static>,
    wait: Duration,
) -> LocalUsers {
    let Some(addr) = server.port(&accounts.port) else {
        return LocalUsers::Failed(format!("no port `{}` was allocated", accounts.port));
    };
    let trust = match crate::tls::root_store(std::slice::from_ref(root)) {
        Ok(t) => t,
        Err(e) => return LocalUsers::Failed(e.to_string()),
    };
    let generated = accounts
        .users
        .iter()
        .map(|u| crate::c2s::Account::generated(u))
        .collect();
    match crate::c2s::Users::provision(
        addr,
        server.domain(),
        generated,
        accounts.provision,
        trust,
        wait,
    )
    .await
    {
        Ok(users) => LocalUsers::Online(Box::new(users)),
        Err(e) => {
            tracing::warn!(target = server.name(), error = %e, "local users not online");
            LocalUsers::Failed(format!(
                "{}'s local users could not log in over c2s at {addr}: {e}",
                server.name()
            ))
        }
    }
}

impl Harness {
    /// Starts PKI, DNS and a managed server (`profile`) configured for one
    /// configuration `group`: its certificate from this run's PKI, trust in
    /// its root, resolution through this run's mock DNS.
    pub async fn start_managed(
        profile: &Profile,
        group: Group,
        partners: &[String],
        options: Options,
        keep_logs: Option<PathBuf>,
        needs_users: bool,
    ) -> Result<Harness, HarnessError> {
        let pki = Arc::new(Pki::new().map_err(HarnessError::Pki)?);
        let dns = match profile.dns {
            DnsHookup::Forward => case_dns(LOOPBACK_ANY_PORT).await?,
            // resolv.conf takes no port: the standard one, on an address of its own.
            DnsHookup::ResolvConf => network::on_own_loopback(53, case_dns).await?,
        };
        let cert = pki
            .leaf(TARGET_DOMAIN, CertVariant::Valid, KeyType::Ecdsa)
            .map_err(HarnessError::TargetCertificate)?
            .ok_or(HarnessError::NoTargetCertificate)?;
        let setup = Setup {
            domain: TARGET_DOMAIN,
            dns: dns.addr(),
            chain_pem: &cert.chain_pem,
            key_pem: &cert.key_pem,
            ca_pem: pki.root_pem(),
            keep_logs: keep_logs.as_deref(),
            partners,
        };
        let server = ManagedServer::start(profile, group, &setup).await?;
        let config_reason = profile
            .capabilities
            .config_validation
            .reason
            .clone()
            .unwrap_or_else(|| format!("{} cannot be handed a configuration", profile.name));
        let users = match (&profile.accounts, needs_users) {
            (_, false) => LocalUsers::NotNeeded,
            (None, true) => LocalUsers::Failed(format!(
                "the profile of {} lists no `[accounts]`: no local user to observe delivery at",
                profile.name
            )),
            (Some(accounts), true) => {
                provision_users(&server, accounts, pki.root_der(), login_wait(&options)).await
            }
        };
        Ok(Harness {
            pki,
            dns,
            target: Target::Managed(Box::new(Managed {
                server,
                config_reason,
                users,
            })),
            target_domain: TARGET_DOMAIN.to_string(),
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{CertVariant, Direction, DnsVariant, Pairing};
    use crate::partner::Negotiation;
    use std::path::Path;

    fn prosody() -> Profile {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/targets");
        Profile::named(&dir, "prosody").unwrap()
    }

    fn pairing(t: &str, dns: DnsVariant) -> Case {
        let p = Pairing {
            target: Negotiation::from_code(t).unwrap(),
            peer: Negotiation::from_code("OO1").unwrap(),
            direction: Direction::Inbound,
            cert: CertVariant::Valid,
            dns,
        };
        Case {
            id: crate::scenario::pairing_id(&p),
            family: "plain".into(),
            description: String::new(),
            kind: CaseKind::Pairing(p),
        }
    }

    #[test]
    fn plan_splits_cases_and_keeps_every_one() {
        let cases = vec![
            pairing("RO1", DnsVariant::Srv),
            pairing("RR0", DnsVariant::Srv),
            pairing("RR1", DnsVariant::Srv),
            pairing("RO1", DnsVariant::ProxyFqdn),
        ];
        let p = plan(&prosody(), &cases, Policy::Lync);
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups.values().map(Vec::len).sum::<usize>(), 3);
        assert_eq!(p.not_applicable.len(), 1);
    }

    /// A scenario that holds under RN1 and RO1 (SASL plays no part) runs
    /// alone in RN1's group, the first it lists; beside a case that needs
    /// RO1's group it joins that one and no further instance starts.
    #[test]
    fn a_scenario_joins_any_group_that_provides_its_configuration() {
        let profile = prosody();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let scenario = crate::scenario::load_all(&root.join("scenarios/matrix.toml"))
            .unwrap()
            .into_iter()
            .find(|c| c.id == "spec/4.1/cleartext-dialback-tls-required")
            .unwrap();
        let caps = &profile.capabilities;
        let group = |code: &str| {
            crate::target::profile::express(
                caps,
                Negotiation::from_code(code).unwrap(),
                Policy::Lync,
            )
            .unwrap()
        };
        assert_ne!(group("RN1"), group("RO1"));
        let alone = plan(&profile, std::slice::from_ref(&scenario), Policy::Lync);
        assert_eq!(
            alone.groups.keys().copied().collect::<Vec<_>>(),
            [group("RN1")]
        );
        assert_eq!(
            decide_alone(&profile, &scenario, Policy::Lync),
            Decision::Run(group("RN1"))
        );
        let beside = plan(
            &profile,
            &[scenario.clone(), pairing("RO1", DnsVariant::Srv)],
            Policy::Lync,
        );
        assert_eq!(
            beside.groups.keys().copied().collect::<Vec<_>>(),
            [group("RO1")]
        );
        assert_eq!(beside.groups[&group("RO1")].len(), 2);
    }
}
