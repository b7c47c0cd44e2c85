//! `s2spec run`: the main job. Plays every selected case against the target,
//! shows progress, writes `report.json`, `junit.xml`, `report.md` and
//! `report.html`, prints a summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::baseline::WriteError;
use super::{exit, service};
use crate::gate::baseline::BaselineError;
use crate::oracle::Policy;
use crate::refproxy::Fault;
use crate::report::{self, CaseResult, RunInfo, Verdict};
use crate::run::Options;
use crate::run::execute::{CasesError, ExternalSpec, RunError, RunPlan, SnapshotSpec, TargetSpec};
use crate::target::profile::{Profile, ProfileError};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 every case passed (non-strict allowed unless --strict), \
1 a case failed, 2 the harness could not run (or a case ended in error).\n\
With --baseline: 0 only known deviations, 1 a new or worse case (or, with \
--baseline-strict, a fixed or changed entry), 2 harness trouble, an error case \
the baseline does not list, or a bad baseline file (FILE:LINE:COL)."
)]
pub struct Args {
    /// The target under test: `reference` (the embedded reference proxy),
    /// `external` (a server someone else started: --target-addr,
    /// --target-domain, --certs), a profile NAME in --profiles (prosody,
    /// ejabberd; see `s2spec targets`) or a profile file PATH.toml.
    #[arg(long, value_name = "TARGET", default_value = "reference")]
    target: String,
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
    /// reports: all, failing (non-strict, fail, error), fail (fail, error)
    /// or none. --snapshots
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
    /// Managed targets: the directory where `--target NAME` finds NAME.toml.
    #[arg(long, value_name = "DIR", default_value = "fixtures/targets")]
    profiles: PathBuf,
}

/// More would only spend sockets: no matrix has that many cases.
const MAX_JOBS: u64 = 65_536;
/// A case waits on the network for seconds; a day is already absurd.
const MAX_TIMEOUT_S: u64 = 86_400;

fn parse_fault(s: &str) -> Result<Fault, crate::UnknownSpelling> {
    s.parse()
}

fn parse_transcripts(s: &str) -> Result<report::Transcripts, crate::UnknownSpelling> {
    s.parse()
}

fn parse_policy(s: &str) -> Result<Policy, crate::UnknownSpelling> {
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

pub use crate::run::execute::{load_cases, select};

/// Why `run` could not do its job (exit 2); the texts are its messages.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("no case matches the selection (see `s2spec list`)")]
    NoCases,
    /// `--target external` without a flag it needs (`flag`).
    #[error("--target external needs {flag}")]
    ExternalNeeds { flag: &'static str },
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error(transparent)]
    Service(#[from] service::ServiceError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Cases(#[from] CasesError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Run(#[from] RunError),
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

/// The two built-in targets; any other name is a profile.
const REFERENCE: &str = "reference";
const EXTERNAL: &str = "external";

fn run_inner(args: Args) -> Result<u8, Error> {
    // A bad baseline file is found before anything starts.
    let gate = args.gate.clone();
    let baseline = gate.load()?;
    let all = load_cases(&args.matrix)?;
    let cases = select(all.clone(), &args.filter, &args.skip, args.partition);
    if cases.is_empty() {
        return Err(Error::NoCases);
    }
    let profile = match args.target.as_str() {
        REFERENCE | EXTERNAL => None,
        other => Some(Profile::find(&args.profiles, other)?),
    };
    let target_name = profile
        .as_ref()
        .map_or(args.target.as_str(), |p| p.name.as_str())
        .to_string();
    if let (Some(b), Some(path)) = (&baseline, &gate.baseline) {
        b.check(
            &target_name,
            &args.policy.to_string(),
            &path.display().to_string(),
        )?;
    }
    // A managed server must be installed before anything starts.
    if let Some(why) = profile.as_ref().and_then(Profile::unavailable) {
        eprintln!("s2spec run: {why}");
        return Ok(exit::TROUBLE);
    }
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| Path::new("reports").join(&target_name));
    let target = match profile {
        Some(p) => TargetSpec::Managed(Box::new(p)),
        None if args.target == EXTERNAL => TargetSpec::External(external(&args)?),
        None => TargetSpec::Reference,
    };
    let plan = RunPlan {
        target,
        all,
        cases,
        options: Options {
            policy: args.policy,
            faults: args.faults.iter().copied().collect(),
            case_deadline: Duration::from_secs(args.timeout),
            jobs: usize::try_from(args.jobs).unwrap_or(usize::MAX),
            ..Options::default()
        },
        report_dir: report_dir.clone(),
        snapshots: args.snapshots.clone().map(|dir| SnapshotSpec {
            dir,
            update: args.update_snapshots,
        }),
        transcripts: args.transcripts,
        info: RunInfo {
            s2spec_version: env!("CARGO_PKG_VERSION").to_string(),
            target: target_name,
            faults: args.faults.iter().map(|f| f.to_string()).collect(),
            policy: args.policy.to_string(),
            started: String::new(),
            finished: String::new(),
            duration_ms: 0,
            transcripts: None,
            selection: Some(report::Selection {
                filter: args.filter.clone(),
                skip: args.skip.clone(),
                partition: args.partition.map(|(k, n)| report::Partition { k, n }),
            }),
            interrupted: false,
        },
    };
    let selected = plan.cases.len();
    let runtime = service::runtime()?;
    let progress = progress_bar(selected as u64);
    let on_done = {
        let bar = progress.clone();
        move |r: &CaseResult| {
            if r.verdict == Verdict::Fail || r.verdict == Verdict::Error {
                bar.println(format!("{} {}", r.verdict, r.id));
            }
            bar.inc(1);
        }
    };
    let outcome = crate::run::execute::execute(plan, runtime, service::wait_for_stop(), on_done);
    progress.finish_and_clear();
    let mut outcome = outcome?;
    if outcome.interrupted {
        eprintln!(
            "s2spec run: interrupted after {} of {selected} cases; targets stopped; \
             writing a partial report",
            outcome.report.cases.len(),
        );
    }
    if let Some(dir) = &args.snapshots {
        if outcome.snapshots_written > 0 {
            eprintln!(
                "snapshots: wrote {} in {}",
                outcome.snapshots_written,
                dir.display()
            );
        }
        for id in &outcome.drifted {
            eprintln!("snapshot drift: {id} (compare with {})", dir.display());
        }
    }
    gate.apply(&mut outcome.report, baseline.as_ref())?;
    super::baseline::write_reports(&outcome.report, &report_dir)?;
    if outcome.interrupted {
        return Ok(exit::TROUBLE);
    }
    if let Some(why) = outcome.lost {
        eprintln!("s2spec run: {why}");
        return Ok(exit::TROUBLE);
    }
    Ok(super::baseline::exit_status(
        &outcome.report,
        args.strict,
        outcome.drifted.len(),
    ))
}

/// The external target of the flags, and how its operator is briefed.
fn external(args: &Args) -> Result<ExternalSpec, Error> {
    let addr = args.target_addr.ok_or(Error::ExternalNeeds {
        flag: "--target-addr",
    })?;
    service::require_loopback(addr, "--target-addr")?;
    service::require_loopback(args.dns_listen, "--dns-listen")?;
    let certs = args
        .certs
        .clone()
        .ok_or(Error::ExternalNeeds { flag: "--certs" })?;
    let wait = !args.no_wait;
    Ok(ExternalSpec {
        addr,
        domain: args.target_domain.clone(),
        certs,
        dns_listen: args.dns_listen,
        briefing: Arc::new(move |instructions: String| {
            eprintln!("{instructions}");
            if wait {
                eprintln!("Press Enter to start (or pass --no-wait).");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            }
        }),
    })
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
