//! The `s2spec` command line. Each subcommand lives in its own file with its
//! own `Args` and `run`; nothing in the library depends on this module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod baseline;
mod certs;
mod diff;
mod dns;
mod list;
mod lync;
mod matrix;
mod merge;
mod probe;
mod run;
mod serve;
mod service;
mod targets;
mod validate;

/// Exit codes shared by every command.
pub mod exit {
    /// Everything passed / no errors.
    pub const OK: u8 = 0;
    /// The input was understood and found wanting (validation errors, failed cases).
    pub const FAILED: u8 = 1;
    /// The command could not do its job (unreadable file, bad flag, harness error).
    pub const TROUBLE: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "s2spec",
    version,
    about = "Conformance harness for XMPP server-to-server federation",
    long_about = "s2spec tests an XMPP federation proxy or server against its partner \
                  configurations: TLS, SASL EXTERNAL and Server Dialback, in both directions."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the conformance cases against a target and write the reports (the main job).
    Run(run::Args),
    /// List the case ids with one-line descriptions.
    List(list::Args),
    /// List the targets `run --target` accepts: built-in ones and profiles, with versions.
    Targets(targets::Args),
    /// Check a partner-set file and print every diagnostic.
    Validate(validate::Args),
    /// Print the 18-row negotiation matrix computed by the oracle.
    Matrix(matrix::Args),
    /// Mint a CA, an intermediate CA and certificate variants for domains.
    Certs(certs::Args),
    /// Write a baseline of known deviations from a report.json.
    Baseline(baseline::Args),
    /// Compare two report.json files: new failures, fixed cases, changes.
    Diff(diff::Args),
    /// Merge the report.json files of a sharded (--partition) run.
    Merge(merge::Args),
    /// Read Get-CsXmppAllowedPartner output (Format-List or Export-Csv) into a partner set.
    ImportLync(lync::ImportArgs),
    /// Print the New-CsXmppAllowedPartner commands that recreate a partner set.
    ExportLync(lync::ExportArgs),
    /// Serve a mock DNS zone until interrupted.
    Dns(dns::Args),
    /// Run the reference federation proxy until interrupted.
    Serve(serve::Args),
    /// Find out how a live server federates and which partner configuration fits it.
    Probe(probe::Args),
}

/// Writes to standard output; a closed pipe (`s2spec matrix | head`) is not
/// an error worth a panic, so it ends the output quietly.
pub(crate) fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run::run(args),
        Command::List(args) => list::run(args),
        Command::Targets(args) => targets::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Baseline(args) => baseline::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Merge(args) => merge::run(args),
        Command::ImportLync(args) => lync::import(args),
        Command::ExportLync(args) => lync::export(args),
        Command::Dns(args) => dns::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Probe(args) => probe::run(args),
    };
    ExitCode::from(code)
}
