//! One whole run, from a plan to a report: starts the target the plan names
//! (the reference proxy, an external server, or a managed one group after
//! the other), plays the selected cases, stops everything — also when a
//! stop signal arrives — and checks that the report holds exactly the
//! selected cases. The command line only builds the plan and prints.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::managed::{ManagedOptions, run_managed};
use super::{Harness, LOCAL_USER, Options, partner_set};
use crate::report::{self, CaseResult, Report, RunInfo};
use crate::scenario::Case;
use crate::target::profile::Profile;

/// Which target a run tests.
pub enum TargetSpec {
    /// The embedded reference federation proxy, started in-process.
    Reference,
    /// A server someone else started.
    External(ExternalSpec),
    /// A server s2spec starts from its profile.
    Managed(Box<Profile>),
}

/// An external target and how its operator is told what to configure.
pub struct ExternalSpec {
    pub addr: SocketAddr,
    pub domain: String,
    /// A directory from `s2spec certs` whose CA the target trusts.
    pub certs: PathBuf,
    /// Where the mock DNS listens.
    pub dns_listen: SocketAddr,
    /// Shown the configuration instructions once the DNS runs; it may block
    /// (waiting for the operator), so it runs off the runtime's threads.
    pub briefing: Arc<dyn Fn(String) + Send + Sync>,
}

/// Compare each case's normalised transcript with `dir/<case>.snap`.
#[derive(Debug, Clone)]
pub struct SnapshotSpec {
    pub dir: PathBuf,
    /// Overwrite differing snapshots instead of counting them.
    pub update: bool,
}

/// Everything one run needs.
pub struct RunPlan {
    pub target: TargetSpec,
    /// Every case: the partner set covers them all, so a filtered run sees
    /// the same target configuration as a full one.
    pub all: Vec<Case>,
    /// The selected cases, in order.
    pub cases: Vec<Case>,
    pub options: Options,
    /// Where the reports go (managed logs, an external target's partner set
    /// and the server's VERSION are written here too).
    pub report_dir: PathBuf,
    pub snapshots: Option<SnapshotSpec>,
    /// Which cases keep their transcripts in the report.
    pub transcripts: report::Transcripts,
    /// The report's run record; its times and `interrupted` are filled in.
    pub info: RunInfo,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub report: Report,
    /// A stop signal ended the run; the report holds the finished cases.
    pub interrupted: bool,
    /// Why the report does not hold exactly one result per selected case.
    pub lost: Option<String>,
    /// Snapshots written because they were missing (or `update`).
    pub snapshots_written: usize,
    /// Cases whose transcript differs from its snapshot.
    pub drifted: Vec<String>,
}

/// Why a run could not be carried out. The texts are the command's messages.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A managed server is not installed, or needs privileges this process lacks.
    #[error("{0}")]
    Unavailable(String),
    /// Starting the target or its services failed.
    #[error(transparent)]
    Harness(#[from] super::HarnessError),
    /// An external run's `--certs` directory is unusable.
    #[error("--certs {}: {source}", dir.display())]
    Certs {
        dir: PathBuf,
        #[source]
        source: crate::pki::PkiError,
    },
    #[error(
        "--certs {}: no CA there; create one with `s2spec certs --out {} --domain {domain} --variant valid`",
        dir.display(),
        dir.display()
    )]
    NoCa { dir: PathBuf, domain: String },
    /// `start_external` was handed another kind of target (a harness bug).
    #[error("not an external target")]
    NotExternal,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Signals(#[from] SignalError),
    #[error(
        "the target at {addr} does not answer a server-to-server stream header to {domain} \
         within 2 s; no case was run (is it started, listening there, and serving that \
         domain?)"
    )]
    Silent { addr: SocketAddr, domain: String },
}

/// Watching for a stop request failed; `signal` names it (`SIGTERM`, `Ctrl-C`).
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {signal}: {source}")]
pub struct SignalError {
    pub signal: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Runs `plan` on `runtime` until it ends or `stop` resolves; `done` is told
/// of each finished case. On a stop the run is dropped, which stops every
/// target through its guards, and the report holds the finished cases.
pub fn execute(
    plan: RunPlan,
    runtime: tokio::runtime::Runtime,
    stop: impl std::future::Future<Output = Result<(), SignalError>>,
    done: impl Fn(&CaseResult) + Send + Sync + Clone + 'static,
) -> Result<RunOutcome, RunError> {
    // Instance directories (with private keys) of managed runs that were
    // killed before they could clean up.
    crate::target::managed::remove_dead_instances(&std::env::temp_dir());
    let started_at = now_rfc3339();
    let started = Instant::now();
    // Every finished case, also kept here so that an interrupted run can
    // still report what it did.
    let finished: Arc<Mutex<Vec<CaseResult>>> = Arc::default();
    let on_done = {
        let finished = finished.clone();
        move |r: &CaseResult| {
            done(r);
            if let Ok(mut f) = finished.lock() {
                f.push(r.clone());
            }
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = play(&plan, on_done) => r.map(Some),
            stop = stop => stop.map(|()| None).map_err(RunError::Signals),
        }
    });
    let (results, interrupted) = match outcome? {
        Some(results) => (results, false),
        None => {
            // Dropping the run's tasks drops the targets: managed servers
            // are killed and their directories removed before we go on.
            runtime.shutdown_timeout(Duration::from_secs(10));
            let done = finished.lock().map(|f| f.clone()).unwrap_or_default();
            (done, true)
        }
    };
    let lost = unreported(&plan.cases, &results);
    let mut info = plan.info;
    info.started = started_at;
    info.finished = now_rfc3339();
    info.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    info.interrupted = interrupted;
    let mut report = Report::new(info, results);
    // Snapshots need every transcript; compare them before any is left out.
    let (snapshots_written, drifted) = match &plan.snapshots {
        // A partial run says nothing about the cases it did not reach.
        Some(s) if !interrupted => compare_snapshots(&report, &s.dir, s.update)?,
        Some(_) | None => (0, Vec::new()),
    };
    report.keep_transcripts(plan.transcripts);
    if let TargetSpec::Managed(profile) = &plan.target
        && let Some(version) = profile.version()
    {
        let path = plan.report_dir.join("VERSION");
        std::fs::create_dir_all(&plan.report_dir)
            .and_then(|()| std::fs::write(&path, format!("{version}\n")))
            .map_err(|source| RunError::Io {
                context: format!("cannot write {}", path.display()),
                source,
            })?;
    }
    Ok(RunOutcome {
        report,
        interrupted,
        lost,
        snapshots_written,
        drifted,
    })
}

/// Starts the plan's target and plays its cases; every target is stopped
/// before this returns (or, when it is dropped, by the targets' guards).
async fn play(
    plan: &RunPlan,
    done: impl Fn(&CaseResult) + Send + Sync + Clone + 'static,
) -> Result<Vec<CaseResult>, RunError> {
    let options = plan.options.clone();
    let harness = match &plan.target {
        TargetSpec::Managed(profile) => {
            let managed = ManagedOptions {
                keep_logs: Some(plan.report_dir.join("logs")),
            };
            if let Some(dir) = &managed.keep_logs {
                let _ = std::fs::remove_dir_all(dir);
            }
            return run_managed(profile, plan.cases.clone(), options, managed, done).await;
        }
        TargetSpec::Reference => Harness::start_reference(&plan.all, options).await?,
        TargetSpec::External(_) => start_external(plan, options).await?,
    };
    let harness = Arc::new(harness);
    let results = harness.run(plan.cases.clone(), done).await;
    if let Ok(h) = Arc::try_unwrap(harness) {
        h.shutdown().await;
    }
    Ok(results)
}

/// Starts DNS for an external target, writes the partner set it must be
/// given, tells the operator what to configure, and checks that the target
/// answers at all.
async fn start_external(plan: &RunPlan, options: Options) -> Result<Harness, RunError> {
    let TargetSpec::External(spec) = &plan.target else {
        return Err(RunError::NotExternal);
    };
    let pki = crate::pki::Pki::load_dir(&spec.certs)
        .map_err(|source| RunError::Certs {
            dir: spec.certs.clone(),
            source,
        })?
        .ok_or_else(|| RunError::NoCa {
            dir: spec.certs.clone(),
            domain: spec.domain.clone(),
        })?;
    let report_dir = &plan.report_dir;
    std::fs::create_dir_all(report_dir).map_err(|source| RunError::Io {
        context: report_dir.display().to_string(),
        source,
    })?;
    let partners = report_dir.join("partners.toml");
    std::fs::write(&partners, partner_set(&plan.all, &spec.domain)).map_err(|source| {
        RunError::Io {
            context: format!("cannot write {}", partners.display()),
            source,
        }
    })?;
    let target = crate::target::External {
        addr: spec.addr,
        domain: spec.domain.clone(),
    };
    let harness = Harness::start_external(target, options, Arc::new(pki), spec.dns_listen).await?;
    let instructions = format!(
        "Configure the target at {addr} before the run:\n\
         - serve the domain {domain} with {certs}/{domain}.valid.crt and its .key\n\
         - trust {certs}/ca.pem for server-to-server certificates\n\
         - resolve partner domains through the DNS server at {dns} (UDP and TCP)\n\
         - add the partners of {partners} (one per case) and a local user `{user}`",
        addr = spec.addr,
        domain = spec.domain,
        certs = spec.certs.display(),
        dns = harness.dns_addr(),
        partners = partners.display(),
        user = LOCAL_USER,
    );
    let briefing = spec.briefing.clone();
    // Off the runtime's threads, so that a signal still stops the run here.
    let _ = tokio::task::spawn_blocking(move || briefing(instructions)).await;
    // SPEC §4.3: a refusal must be observable, so a target that answers
    // nothing would otherwise be graded as refusing everything.
    if !crate::target::managed::answers_stream_header(spec.addr, &spec.domain).await {
        return Err(RunError::Silent {
            addr: spec.addr,
            domain: spec.domain.clone(),
        });
    }
    Ok(harness)
}

/// The cases a filter/skip/partition selection keeps, in matrix order.
pub fn select(
    all: Vec<Case>,
    filter: &[String],
    skip: &[String],
    partition: Option<(usize, usize)>,
) -> Vec<Case> {
    all.into_iter()
        .filter(|c| filter.is_empty() || filter.iter().any(|f| c.id.contains(f.as_str())))
        .filter(|c| !skip.iter().any(|s| c.id.contains(s.as_str())))
        .enumerate()
        .filter(|(i, _)| partition.is_none_or(|(k, n)| i % n == k - 1))
        .map(|(_, c)| c)
        .collect()
}

/// The matrix cases, then every scenario file in the matrix file's folder.
/// What this accepts can run: the partner set a run generates from the
/// cases must load and validate, and a problem names the scenario file.
pub fn load_cases(matrix: &Path) -> Result<Vec<Case>, CasesError> {
    let cases = crate::scenario::load_all(matrix)?;
    check_partner_set(&cases)?;
    Ok(cases)
}

/// Why the cases of a matrix cannot run.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(transparent)]
    PartnerSet(#[from] PartnerSetError),
}

/// The errors of the partner set generated from the cases, one a line.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PartnerSetError {
    pub problems: Vec<PartnerProblem>,
}

/// One error of the generated partner set.
#[derive(Debug, thiserror::Error)]
pub enum PartnerProblem {
    /// The entry of a scenario file, at that file's `[partner]` line.
    #[error(
        "{file}:{line}: its partner entry cannot be configured: {}: {}",
        diagnostic.code,
        diagnostic.message
    )]
    Script {
        file: String,
        line: usize,
        diagnostic: crate::partner::Diagnostic,
    },
    /// An entry no scenario file names (a matrix partner).
    #[error("{0}")]
    Generated(crate::partner::Diagnostic),
}

/// The generated partner set's errors, each at the `[partner]` line of the
/// scenario file it came from.
fn check_partner_set(cases: &[Case]) -> Result<(), PartnerSetError> {
    use crate::partner::{Severity, load_str, validate};
    use crate::scenario::CaseKind;
    const GENERATED: &str = "<generated partner set>";
    let text = partner_set(cases, super::TARGET_DOMAIN);
    let errors = match load_str(&text, GENERATED) {
        Err(diagnostics) => diagnostics,
        Ok(loaded) => validate(&loaded)
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    };
    if errors.is_empty() {
        return Ok(());
    }
    let partner_line = |file: &str| {
        crate::source::read_text(Path::new(file))
            .ok()
            .and_then(|t| t.lines().position(|l| l.trim() == "[partner]"))
            .map_or(1, |i| i + 1)
    };
    let problems = errors
        .into_iter()
        .map(|d| {
            // The partner a diagnostic is about, else the entry at its line.
            let domain = d.partner.clone().or_else(|| {
                let before = text.lines().take(d.position.line).collect::<Vec<_>>();
                before.iter().rev().find_map(|l| {
                    l.strip_prefix("domain = \"")
                        .and_then(|r| r.strip_suffix('"'))
                        .map(str::to_owned)
                })
            });
            let script = cases.iter().find_map(|c| match &c.kind {
                CaseKind::Script(s) if Some(s.domain()) == domain => Some(s),
                _ => None,
            });
            match script {
                Some(s) => PartnerProblem::Script {
                    file: s.file.clone(),
                    line: partner_line(&s.file),
                    diagnostic: d,
                },
                None => PartnerProblem::Generated(d),
            }
        })
        .collect();
    Err(PartnerSetError { problems })
}

/// Writes missing snapshots, lists (or with `update`, rewrites) differing
/// ones; returns how many were written and which differ.
fn compare_snapshots(
    report: &Report,
    dir: &Path,
    update: bool,
) -> Result<(usize, Vec<String>), RunError> {
    std::fs::create_dir_all(dir).map_err(|source| RunError::Io {
        context: format!("--snapshots {}", dir.display()),
        source,
    })?;
    let (mut written, mut drifted) = (0, Vec::new());
    for case in &report.cases {
        let path = dir.join(format!("{}.snap", report::snapshot_name(&case.id)));
        let text = report::snapshot_text(case);
        match std::fs::read_to_string(&path) {
            Ok(old) if old == text => continue,
            Ok(_) if !update => drifted.push(case.id.clone()),
            Ok(_) | Err(_) => {
                std::fs::write(&path, &text).map_err(|source| RunError::Io {
                    context: format!("cannot write {}", path.display()),
                    source,
                })?;
                written += 1;
            }
        }
    }
    Ok((written, drifted))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Why the results are not exactly one per selected case, if they are not.
pub fn unreported(selected: &[Case], results: &[CaseResult]) -> Option<String> {
    let mut counts: BTreeMap<&str, i64> = selected.iter().map(|c| (c.id.as_str(), 1)).collect();
    let mut extra = Vec::new();
    for r in results {
        match counts.get_mut(r.id.as_str()) {
            Some(n) => *n -= 1,
            None => extra.push(r.id.as_str()),
        }
    }
    let missing: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(id, _)| *id)
        .collect();
    let twice: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(id, _)| *id)
        .collect();
    if missing.is_empty() && twice.is_empty() && extra.is_empty() {
        return None;
    }
    let list = |ids: &[&str]| {
        let shown: Vec<&str> = ids.iter().take(5).copied().collect();
        let more = ids.len().saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{}{more}", shown.join(", "))
    };
    let mut why = vec![format!(
        "the run selected {} cases but reported {}",
        selected.len(),
        results.len()
    )];
    if !missing.is_empty() {
        why.push(format!("missing: {}", list(&missing)));
    }
    if !twice.is_empty() {
        why.push(format!("reported more than once: {}", list(&twice)));
    }
    if !extra.is_empty() {
        why.push(format!("not selected: {}", list(&extra)));
    }
    Some(why.join("; "))
}
