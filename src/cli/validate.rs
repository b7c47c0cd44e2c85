//! `s2spec validate FILE`: load a partner-set file, run every validation rule
//! and print every diagnostic.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::exit::{FAILED, OK, TROUBLE};
use crate::partner::{self, Diagnostic, LoadError, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One `FILE:LINE:COL: CODE: message (partner DOMAIN, field FIELD)` line per
    /// diagnostic on stdout, and an "N errors, M warnings" summary on stderr.
    Text,
    /// One pretty-printed JSON object `{"file", "valid", "diagnostics"}` on stdout.
    Json,
}

#[derive(Debug, clap::Args)]
// The one-line about comes from the variant's doc comment in `cli/mod.rs`,
// which overrides any about set here; the details go after the options.
#[command(after_help = "\
Every problem is reported, not just the first: parse errors (P…) or, once the
file parses, the validation errors (E…) and warnings (W…) of SPEC §3, each
with file, line, column, partner, field and a stable code.

Codes:
  P1 TOML syntax error or not UTF-8     P4 unknown value for type/tls/sasl
  P2 unknown key                        P5 missing required partner field
  P3 wrong type                         P6 value out of range (connection-limit)
  E1 SASL requires TLS                  W1 TLS optional with SASL enabled
  E2 no authentication method admitted  W2 dialback inert with TLS+SASL required
  E3 invalid or duplicate domain

Exit status:
  0  no errors (warnings allowed)
  1  validation errors (E…)
  2  the file cannot be read or parsed (P…)

Example:
  s2spec validate partners.toml --format json")]
pub struct Args {
    /// The partner-set file (TOML) to check.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The JSON report: `valid` is true when there is no error.
#[derive(Serialize)]
struct Report<'a> {
    file: String,
    valid: bool,
    diagnostics: &'a [Diagnostic],
}

pub fn run(args: Args) -> u8 {
    let (diagnostics, parsed) = match partner::load_file(&args.file) {
        Ok(loaded) => (partner::validate(&loaded), true),
        Err(LoadError::Parse(diagnostics)) => (diagnostics, false),
        Err(e @ LoadError::Io { .. }) => {
            eprintln!("s2spec: {e}");
            return TROUBLE;
        }
    };
    let errors = count(&diagnostics, Severity::Error);
    if let Err(e) = print(&args, &diagnostics, errors) {
        eprintln!("s2spec: cannot write the report: {e}");
        return TROUBLE;
    }
    match (parsed, errors) {
        (false, _) => TROUBLE,
        (true, 0) => OK,
        (true, _) => FAILED,
    }
}

fn count(diagnostics: &[Diagnostic], severity: Severity) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .count()
}

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
enum PrintError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Writes the report; a closed stdout (e.g. `| head`) is an error, not a panic.
fn print(args: &Args, diagnostics: &[Diagnostic], errors: usize) -> Result<(), PrintError> {
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Text => {
            for d in diagnostics {
                writeln!(out, "{d}")?;
            }
            let warnings = count(diagnostics, Severity::Warning);
            eprintln!(
                "{}, {}",
                plural(errors, "error"),
                plural(warnings, "warning")
            );
        }
        Format::Json => {
            let report = Report {
                file: args.file.display().to_string(),
                valid: errors == 0,
                diagnostics,
            };
            let json = serde_json::to_string_pretty(&report)?;
            writeln!(out, "{json}")?;
        }
    }
    Ok(())
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
