//! `s2spec diff OLD.json NEW.json`: what changed between two runs.

use std::path::PathBuf;

use super::exit;
use crate::gate::diff::diff;
use crate::report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Lists per kind of change, transcript diffs indented.
    Text,
    /// A pull-request comment: headline, tables, transcript diffs folded.
    Markdown,
    /// The whole comparison as one JSON object.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Lists new failures (a verdict that got worse: pass or not-applicable <
non-strict < fail or error; or a new case that does not pass), cases missing
from NEW, fixed cases, other verdict changes, message changes and changes of
the normalised transcript (as in --snapshots) of cases both reports keep a
transcript of.

Exit status: 0 NEW is not worse than OLD, 1 it is (a new failure or a missing
case), 2 a report cannot be read.")]
pub struct Args {
    /// The earlier report.json (e.g. of the main branch).
    #[arg(value_name = "OLD.json")]
    old: PathBuf,
    /// The later report.json (e.g. of the pull request).
    #[arg(value_name = "NEW.json")]
    new: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

pub fn run(args: Args) -> u8 {
    let read = |p: &PathBuf| report::read_json(p);
    let (old, new) = match (read(&args.old), read(&args.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("s2spec diff: {e}");
            return exit::TROUBLE;
        }
    };
    let d = diff(
        &old,
        &args.old.display().to_string(),
        &new,
        &args.new.display().to_string(),
    );
    let text = match args.format {
        Format::Text => d.text(),
        Format::Markdown => d.markdown(),
        Format::Json => match serde_json::to_string_pretty(&d) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("s2spec diff: cannot serialise: {e}");
                return exit::TROUBLE;
            }
        },
    };
    super::print_stdout(&text);
    if d.worse { exit::FAILED } else { exit::OK }
}
