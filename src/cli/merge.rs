//! `s2spec merge --report-dir DIR A.json B.json …`: the shards of a
//! `--partition`ed run as one set of the four reports.

use std::path::PathBuf;

use super::baseline::{GateArgs, WriteError, exit_status, write_reports};
use super::exit;
use crate::gate::baseline::BaselineError;
use crate::gate::merge::{MergeError, merge};
use crate::report;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Shards must come from one run: the same s2spec version, target, policy, fault
switches, --filter and --skip; with --partition, every part K/N exactly once
and none missing; no case in two shards. Anything else is refused with the
reason. With --baseline the merged run is gated as `s2spec run --baseline`
would gate it.

Exit status: as `s2spec run` (0 all passed, or only known deviations with
--baseline; 1 a failure, or a new or worse case; 2 the shards cannot be read
or merged, or a bad baseline file).")]
pub struct Args {
    /// Where the merged report.json, junit.xml, report.md and report.html go.
    #[arg(long, value_name = "DIR")]
    report_dir: PathBuf,
    /// Treat non-strict (SHOULD-level) deviations as failures (without --baseline).
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    gate: GateArgs,
    /// The shards' report.json files.
    #[arg(value_name = "REPORT.json", required = true)]
    shards: Vec<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    match run_inner(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("s2spec merge: {e}");
            exit::TROUBLE
        }
    }
}

/// Why `merge` could not do its job (exit 2).
#[derive(Debug, thiserror::Error)]
enum MergeCommandError {
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error(transparent)]
    Read(#[from] report::ReadError),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error(transparent)]
    Write(#[from] WriteError),
}

fn run_inner(args: &Args) -> Result<u8, MergeCommandError> {
    let baseline = args.gate.load()?;
    let mut shards = Vec::with_capacity(args.shards.len());
    for path in &args.shards {
        shards.push((path.display().to_string(), report::read_json(path)?));
    }
    let mut merged = merge(&shards)?;
    args.gate.apply(&mut merged, baseline.as_ref())?;
    write_reports(&merged, &args.report_dir)?;
    Ok(exit_status(&merged, args.strict, 0))
}
