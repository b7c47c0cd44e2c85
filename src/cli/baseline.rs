//! `s2spec baseline REPORT.json`: the known deviations of a run as a
//! baseline file, and the gating shared by `run --baseline` and
//! `merge --baseline`.

use std::path::{Path, PathBuf};

use super::exit;
use crate::gate::baseline::{Baseline, BaselineError, baseline_toml, judge};
use crate::report::{self, Report, Verdict};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Lists every non-passing case of the report (non-strict, not-applicable, fail,
error) with its verdict, first message and an empty `reason` to fill in. A
`case` may be edited into a pattern: `*` matches within one segment of the id,
`**` across segments (e.g. \"matrix/in/t-RO1/*/cn-only/*\").

Then `s2spec run --baseline FILE` (or `s2spec merge --baseline FILE`) exits 0
while every non-passing case is covered with its verdict, 1 on any new or
worse case (and, with --baseline-strict, on entries that are fixed or changed).

Exit status: 0 written, 2 the report cannot be read or the file written.")]
pub struct Args {
    /// The report.json of the run whose deviations are accepted.
    #[arg(value_name = "REPORT.json")]
    report: PathBuf,
    /// Where to write the baseline (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> u8 {
    let report = match report::read_json(&args.report) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("s2spec baseline: {e}");
            return exit::TROUBLE;
        }
    };
    let text = baseline_toml(&report, &args.report.display().to_string());
    let listed = report
        .cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .count();
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("s2spec baseline: cannot write {}: {e}", path.display());
                return exit::TROUBLE;
            }
            eprintln!("{}: {listed} known deviation(s)", path.display());
        }
        None => super::print_stdout(&text),
    }
    exit::OK
}

/// The `--baseline` options of `run` and `merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// Gate on a baseline of known deviations (from `s2spec baseline`):
    /// exit 0 when every non-passing case is covered with its verdict, 1 on
    /// any new or worse case; known and fixed entries are listed in every report.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: entries that now pass (or changed verdict) fail the
    /// gate too, so the baseline stays pruned.
    #[arg(long, requires = "baseline")]
    pub baseline_strict: bool,
}

impl GateArgs {
    /// Loads the baseline file, if one was given (FILE:LINE:COL errors).
    pub fn load(&self) -> Result<Option<Baseline>, BaselineError> {
        self.baseline.as_deref().map(Baseline::load).transpose()
    }

    /// Measures `report` against `baseline` and records the outcome in it.
    pub fn apply(
        &self,
        report: &mut Report,
        baseline: Option<&Baseline>,
    ) -> Result<(), BaselineError> {
        let (Some(b), Some(path)) = (baseline, &self.baseline) else {
            return Ok(());
        };
        let file = path.display().to_string();
        b.check_run(report, &file)?;
        report.baseline = Some(judge(b, report, &file, self.baseline_strict));
        Ok(())
    }
}

/// The exit status of a finished run (or merged run): with a baseline, 2 for
/// an error case it does not list, 1 when the gate fails, 0 otherwise;
/// without one, 2 for any error, 1 for a failure (or non-strict with
/// `strict`). `drifted` snapshots always fail.
pub fn exit_status(report: &Report, strict: bool, drifted: usize) -> u8 {
    let s = &report.summary;
    match &report.baseline {
        Some(b) => {
            let unknown_error = report
                .cases
                .iter()
                .any(|c| c.verdict == Verdict::Error && b.known_case(&c.id).is_none());
            if unknown_error {
                exit::TROUBLE
            } else if !b.passes() || drifted > 0 {
                exit::FAILED
            } else {
                exit::OK
            }
        }
        None if s.error > 0 => exit::TROUBLE,
        None if s.fail > 0 || drifted > 0 || (strict && s.non_strict > 0) => exit::FAILED,
        None => exit::OK,
    }
}

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes the four reports into `dir` and prints the summary (and the
/// baseline's verdict) on standard output.
pub fn write_reports(report: &Report, dir: &Path) -> Result<(), WriteError> {
    let json = dir.join("report.json");
    let junit = dir.join("junit.xml");
    let markdown = dir.join("report.md");
    let html = dir.join("report.html");
    let failed = |p: &Path, source| WriteError {
        path: p.to_path_buf(),
        source,
    };
    report::write_json(report, &json).map_err(|e| failed(&json, e))?;
    report::write_junit(report, &junit).map_err(|e| failed(&junit, e))?;
    report::write_markdown(report, &markdown).map_err(|e| failed(&markdown, e))?;
    report::write_html(report, &html).map_err(|e| failed(&html, e))?;
    super::print_stdout(&report::summary_table(report));
    if let Some(b) = &report.baseline {
        super::print_stdout(&b.text());
    }
    super::print_stdout(&format!(
        "reports: {}, {}, {}, {}\n",
        json.display(),
        junit.display(),
        markdown.display(),
        html.display()
    ));
    Ok(())
}
