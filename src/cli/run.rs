//! `s2spec run`: the main job. Plays every selected case against the target,
//! shows progress, writes `report.json`, `junit.xml`, `report.md` and
//! `report.html`, prints a summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{exit, service};
use crate::oracle::Policy;
use crate::refproxy::Fault;
use crate::report::{self, CaseResult, Report, RunInfo, Verdict};
use crate::run::{Harness, Options};
use crate::scenario::Case;

/// Which target to test.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TargetKind {
    /// The embedded reference federation proxy, started in-process.
    Reference,
    /// A server someone else started (--target-addr, --target-domain, --certs).
    External,
    /// Prosody (Debian package `prosody`), configured, started and stopped
    /// by s2spec (profile: fixtures/targets/prosody.toml).
    Prosody,
    /// ejabberd (Debian package `ejabberd`), managed like Prosody
    /// (profile: fixtures/targets/ejabberd.toml).
    Ejabberd,
}

impl TargetKind {
    /// The profile name of a managed target.
    fn managed(self) -> Option<&'static str> {
        match self {
            TargetKind::Prosody => Some("prosody"),
            TargetKind::Ejabberd => Some("ejabberd"),
            TargetKind::Reference | TargetKind::External => None,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 every case passed (non-strict allowed unless --strict), \
1 a case failed, 2 the harness could not run (or a case ended in error).\n\
With --baseline: 0 only known deviations, 1 a new or worse case (or, with \
--baseline-strict, a fixed or changed entry), 2 harness trouble, an error case \
the baseline does not list, or a bad baseline file (FILE:LINE:COL)."
)]
pub struct Args {
    /// The target under test.
    #[arg(long, value_enum, default_value = "reference")]
    target: TargetKind,
    /// Run only cases whose id contains PATTERN (repeatable: any matches).
    #[arg(long, value_name = "PATTERN")]
    filter: Vec<String>,
    /// Leave out cases whose id contains PATTERN (repeatable).
    #[arg(long, value_name = "PATTERN")]
    skip: Vec<String>,
    /// Cases in flight at once (they mostly wait on the network), 1 to 65536.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=MAX_JOBS))]
    jobs: u64,
    /// Run only part K of N of the selected cases (e.g. 2/4), for CI sharding.
    #[arg(long, value_name = "K/N", value_parser = parse_partition)]
    partition: Option<(usize, usize)>,
    /// Deadline of one case, in seconds, 1 to 86400 (one day).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_S))]
    timeout: u64,
    /// Policy profile of the oracle (SPEC §4.4).
    #[arg(long, default_value = "lync", value_parser = parse_policy)]
    policy: Policy,
    /// Where the four reports go (default: reports/<target>/).
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Make the reference target deviate in one named way (repeatable).
    #[arg(long = "reference-fault", value_name = "NAME", value_parser = parse_fault)]
    faults: Vec<Fault>,
    /// Treat non-strict (SHOULD-level) deviations as failures.
    #[arg(long)]
    strict: bool,
    /// Compare each case's normalised transcript with DIR/<case>.snap (written
    /// when missing); any difference fails the run: "no behaviour change".
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// Which cases keep their transcript in report.json and the other
    /// reports: all, failing (non-strict, fail, error) or none. --snapshots
    /// compares the full transcripts before they are left out.
    #[arg(long, value_name = "WHICH", default_value = "failing", value_parser = parse_transcripts)]
    transcripts: report::Transcripts,
    /// With --snapshots: overwrite differing snapshots instead of failing.
    #[arg(long, requires = "snapshots")]
    update_snapshots: bool,
    #[command(flatten)]
    gate: super::baseline::GateArgs,
    /// The matrix file.
    #[arg(long, value_name = "FILE", default_value = "scenarios/matrix.toml")]
    matrix: PathBuf,
    /// External target: its server-to-server address (loopback).
    #[arg(long, value_name = "ADDR", required_if_eq("target", "external"))]
    target_addr: Option<std::net::SocketAddr>,
    /// External target: the domain it serves.
    #[arg(long, value_name = "DOMAIN", default_value = "target.test")]
    target_domain: String,
    /// External target: a directory from `s2spec certs` whose CA the target trusts.
    #[arg(long, value_name = "DIR", required_if_eq("target", "external"))]
    certs: Option<PathBuf>,
    /// External target: where the mock DNS listens (the target resolves through it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5353")]
    dns_listen: std::net::SocketAddr,
    /// External target: start at once instead of waiting for Enter after the
    /// configuration instructions.
    #[arg(long)]
    no_wait: bool,
    /// Managed targets (prosody, ejabberd): where their profiles are.
    #[arg(long, value_name = "DIR", default_value = "fixtures/targets")]
    profiles: PathBuf,
}

/// More would only spend sockets: no matrix has that many cases.
const MAX_JOBS: u64 = 65_536;
/// A case waits on the network for seconds; a day is already absurd.
const MAX_TIMEOUT_S: u64 = 86_400;

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse()
}

fn parse_transcripts(s: &str) -> Result<report::Transcripts, String> {
    s.parse()
}

fn parse_policy(s: &str) -> Result<Policy, String> {
    s.parse()
}

fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 1/4")?;
    let (k, n): (usize, usize) = (
        k.parse().map_err(|_| format!("`{k}` is not a number"))?,
        n.parse().map_err(|_| format!("`{n}` is not a number"))?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("{s}: K must be between 1 and N"));
    }
    Ok((k, n))
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
pub fn load_cases(matrix: &Path) -> Result<Vec<Case>, String> {
    let cases = crate::scenario::load_all(matrix)?;
    check_partner_set(&cases)?;
    Ok(cases)
}

/// The generated partner set's errors, each at the `[partner]` line of the
/// scenario file it came from.
fn check_partner_set(cases: &[Case]) -> Result<(), String> {
    use crate::partner::{Severity, load_str, validate};
    use crate::scenario::CaseKind;
    const GENERATED: &str = "<generated partner set>";
    let text = crate::run::partner_set(cases, crate::run::TARGET_DOMAIN);
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
    let at_partner_line = |file: &str| {
        let line = crate::source::read_text(Path::new(file))
            .ok()
            .and_then(|t| t.lines().position(|l| l.trim() == "[partner]"))
            .map_or(1, |i| i + 1);
        format!("{file}:{line}")
    };
    let lines: Vec<String> = errors
        .iter()
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
                Some(s) => format!(
                    "{}: its partner entry cannot be configured: {}: {}",
                    at_partner_line(&s.file),
                    d.code,
                    d.message
                ),
                None => d.to_string(),
            }
        })
        .collect();
    Err(lines.join("\n"))
}

pub fn run(args: Args) -> u8 {
    service::init_logging("warn");
    match run_inner(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("s2spec run: {message}");
            exit::TROUBLE
        }
    }
}

fn run_inner(args: Args) -> Result<u8, String> {
    // A bad baseline file is found before anything starts.
    let gate = args.gate.clone();
    let baseline = gate.load()?;
    let all = load_cases(&args.matrix)?;
    let cases = select(all.clone(), &args.filter, &args.skip, args.partition);
    if cases.is_empty() {
        return Err("no case matches the selection (see `s2spec list`)".into());
    }
    let target_name = match args.target {
        TargetKind::Reference => "reference",
        TargetKind::External => "external",
        TargetKind::Prosody => "prosody",
        TargetKind::Ejabberd => "ejabberd",
    };
    if let (Some(b), Some(path)) = (&baseline, &gate.baseline) {
        b.check(
            target_name,
            &args.policy.to_string(),
            &path.display().to_string(),
        )
        .map_err(|e| e.to_string())?;
    }
    // A managed server must be installed before anything starts.
    let profile = match args.target.managed() {
        Some(name) => {
            let profile = crate::target::profile::Profile::named(&args.profiles, name)?;
            if let Some(why) = profile.unavailable() {
                eprintln!("s2spec run: {why}");
                return Ok(exit::TROUBLE);
            }
            Some(profile)
        }
        None => None,
    };
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| Path::new("reports").join(target_name));
    let options = Options {
        policy: args.policy,
        faults: args.faults.iter().copied().collect(),
        case_deadline: Duration::from_secs(args.timeout),
        jobs: usize::try_from(args.jobs).unwrap_or(usize::MAX),
        ..Options::default()
    };
    // Instance directories (with private keys) of managed runs that were
    // killed before they could clean up.
    crate::target::managed::remove_dead_instances(&std::env::temp_dir());
    let runtime = service::runtime()?;
    let started_at = now_rfc3339();
    let started = Instant::now();
    // Every finished case, also kept here so that an interrupted run can
    // still report what it did.
    let finished: Arc<Mutex<Vec<CaseResult>>> = Arc::default();
    let progress = progress_bar(cases.len() as u64);
    let on_done = {
        let (bar, finished) = (progress.clone(), finished.clone());
        move |r: &CaseResult| {
            if r.verdict == Verdict::Fail || r.verdict == Verdict::Error {
                bar.println(format!("{} {}", r.verdict, r.id));
            }
            bar.inc(1);
            if let Ok(mut f) = finished.lock() {
                f.push(r.clone());
            }
        }
    };
    let work = async {
        if let Some(profile) = &profile {
            return run_managed(profile, cases.clone(), options, &report_dir, on_done).await;
        }
        // The partner set covers every case, so a filtered run sees the
        // same target configuration as a full one.
        let harness = Arc::new(match args.target {
            TargetKind::Reference => Harness::start_reference(&all, options).await?,
            TargetKind::External => start_external(&args, &all, &report_dir, options).await?,
            TargetKind::Prosody | TargetKind::Ejabberd => {
                return Err("a managed target has no single harness".into());
            }
        });
        let results = harness.run(cases.clone(), on_done).await;
        if let Ok(h) = Arc::try_unwrap(harness) {
            h.shutdown().await;
        }
        Ok::<_, String>(results)
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = work => r.map(Some),
            stop = service::wait_for_stop() => stop.map(|()| None),
        }
    });
    progress.finish_and_clear();
    let (results, interrupted) = match outcome? {
        Some(results) => (results, false),
        None => {
            // Dropping the run's tasks drops the targets: managed servers
            // are killed and their directories removed before we go on.
            runtime.shutdown_timeout(Duration::from_secs(10));
            let done = finished.lock().map(|f| f.clone()).unwrap_or_default();
            eprintln!(
                "s2spec run: interrupted after {} of {} cases; targets stopped; \
                 writing a partial report",
                done.len(),
                cases.len()
            );
            (done, true)
        }
    };
    let lost = unreported(&cases, &results);
    let run = RunInfo {
        s2spec_version: env!("CARGO_PKG_VERSION").to_string(),
        target: target_name.to_string(),
        faults: args.faults.iter().map(|f| f.to_string()).collect(),
        policy: args.policy.to_string(),
        started: started_at,
        finished: now_rfc3339(),
        duration_ms: started.elapsed().as_millis() as u64,
        transcripts: None,
        selection: Some(report::Selection {
            filter: args.filter.clone(),
            skip: args.skip.clone(),
            partition: args.partition.map(|(k, n)| report::Partition { k, n }),
        }),
        interrupted,
    };
    let mut report = Report::new(run, results);
    // Snapshots need every transcript; compare them before any is left out.
    let drifted = match &args.snapshots {
        // A partial run says nothing about the cases it did not reach.
        Some(dir) if !interrupted => compare_snapshots(&report, dir, args.update_snapshots)?,
        Some(_) | None => 0,
    };
    report.keep_transcripts(args.transcripts);
    if let Some(version) = profile.as_ref().and_then(|p| p.version()) {
        let path = report_dir.join("VERSION");
        std::fs::create_dir_all(&report_dir)
            .and_then(|()| std::fs::write(&path, format!("{version}\n")))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    gate.apply(&mut report, baseline.as_ref())?;
    super::baseline::write_reports(&report, &report_dir)?;
    if interrupted {
        return Ok(exit::TROUBLE);
    }
    if let Some(why) = lost {
        eprintln!("s2spec run: {why}");
        return Ok(exit::TROUBLE);
    }
    Ok(super::baseline::exit_status(&report, args.strict, drifted))
}

/// Writes missing snapshots, reports (or with `update`, rewrites) differing
/// ones; returns how many differ.
fn compare_snapshots(report: &Report, dir: &Path, update: bool) -> Result<usize, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("--snapshots {}: {e}", dir.display()))?;
    let (mut written, mut drifted) = (0, Vec::new());
    for case in &report.cases {
        let path = dir.join(format!("{}.snap", report::snapshot_name(&case.id)));
        let text = report::snapshot_text(case);
        match std::fs::read_to_string(&path) {
            Ok(old) if old == text => continue,
            Ok(_) if !update => drifted.push(case.id.clone()),
            Ok(_) | Err(_) => {
                std::fs::write(&path, &text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                written += 1;
            }
        }
    }
    if written > 0 {
        eprintln!("snapshots: wrote {written} in {}", dir.display());
    }
    for id in &drifted {
        eprintln!("snapshot drift: {id} (compare with {})", dir.display());
    }
    Ok(drifted.len())
}

/// A bar on a terminal; plain lines (every 10%) otherwise.
fn progress_bar(len: u64) -> ProgressBar {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} cases, {elapsed} elapsed, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        let bar = ProgressBar::hidden();
        let step = (len / 10).max(1);
        let counter = bar.clone();
        // A hidden bar still counts; report every 10% on stderr.
        std::thread::spawn(move || {
            let mut shown = 0;
            while !counter.is_finished() {
                let pos = counter.position();
                if pos >= shown + step || (pos == len && shown < len) {
                    shown = pos;
                    eprintln!("{pos}/{len} cases");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        bar
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Why the results are not exactly one per selected case, if they are not.
fn unreported(selected: &[Case], results: &[CaseResult]) -> Option<String> {
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

/// Runs the cases against a managed server, one instance per configuration
/// group; every instance is stopped before this returns or when it is dropped
/// (the instance guards kill the server by PID and remove its directory).
async fn run_managed(
    profile: &crate::target::profile::Profile,
    cases: Vec<Case>,
    options: Options,
    report_dir: &Path,
    done: impl Fn(&CaseResult) + Send + Sync + Clone + 'static,
) -> Result<Vec<CaseResult>, String> {
    let managed = crate::target::managed::ManagedOptions {
        keep_logs: Some(report_dir.join("logs")),
    };
    if let Some(dir) = &managed.keep_logs {
        let _ = std::fs::remove_dir_all(dir);
    }
    crate::target::managed::run_managed(profile, cases, options, managed, done).await
}

/// Starts DNS for an external target, writes the partner set it must be
/// given, and tells the operator what to configure.
async fn start_external(
    args: &Args,
    all: &[Case],
    report_dir: &Path,
    options: Options,
) -> Result<Harness, String> {
    let addr = args
        .target_addr
        .ok_or("--target external needs --target-addr")?;
    service::require_loopback(addr, "--target-addr")?;
    service::require_loopback(args.dns_listen, "--dns-listen")?;
    let certs = args
        .certs
        .as_ref()
        .ok_or("--target external needs --certs")?;
    let pki = crate::pki::Pki::load_dir(certs)
        .map_err(|e| format!("--certs {}: {e}", certs.display()))?
        .ok_or_else(|| {
            format!(
                "--certs {}: no CA there; create one with `s2spec certs --out {} --domain {} --variant valid`",
                certs.display(),
                certs.display(),
                args.target_domain
            )
        })?;
    std::fs::create_dir_all(report_dir).map_err(|e| format!("{}: {e}", report_dir.display()))?;
    let partners = report_dir.join("partners.toml");
    std::fs::write(&partners, crate::run::partner_set(all, &args.target_domain))
        .map_err(|e| format!("cannot write {}: {e}", partners.display()))?;
    let target = crate::target::External {
        addr,
        domain: args.target_domain.clone(),
    };
    let harness = Harness::start_external(target, options, Arc::new(pki), args.dns_listen).await?;
    eprintln!(
        "Configure the target at {addr} before the run:\n\
         - serve the domain {domain} with {certs}/{domain}.valid.crt and its .key\n\
         - trust {certs}/ca.pem for server-to-server certificates\n\
         - resolve partner domains through the DNS server at {dns} (UDP and TCP)\n\
         - add the partners of {partners} (one per case) and a local user `{user}`",
        domain = args.target_domain,
        certs = certs.display(),
        dns = harness.dns_addr(),
        partners = partners.display(),
        user = crate::run::LOCAL_USER,
    );
    if !args.no_wait {
        eprintln!("Press Enter to start (or pass --no-wait).");
        // Off the runtime's thread, so that a signal still stops the run here.
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)
        })
        .await;
    }
    // SPEC §4.3: a refusal must be observable, so a target that answers
    // nothing would otherwise be graded as refusing everything.
    if !crate::target::managed::answers_stream_header(addr, &args.target_domain).await {
        return Err(format!(
            "the target at {addr} does not answer a server-to-server stream header to {} \
             within 2 s; no case was run (is it started, listening there, and serving that \
             domain?)",
            args.target_domain
        ));
    }
    Ok(harness)
}
