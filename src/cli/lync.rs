//! `s2spec import-lync` and `s2spec export-lync`: partner lists of Lync /
//! Skype for Business Server to and from partner-set files.

use std::path::PathBuf;

use super::exit;
use crate::lync::{export, import};
use crate::partner::{self, Local, Severity};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Reads what `Get-CsXmppAllowedPartner` prints: the default Format-List text, or
`Export-Csv` (with or without its #TYPE line). Every parameter of
New-/Set-CsXmppAllowedPartner is kept: Identity/Domain, AdditionalDomains,
Description, PartnerType, TlsNegotiation, SaslNegotiation,
SupportDialbackNegotiation, ProxyFqdn, ConnectionLimit, EnableKeepAlive.
Then the partner-set rules of SPEC §3 run on the result.

PowerShell loses data in two ways, both refused with the fix:
  L5 a list cut short by $FormatEnumerationLimit: {a, b, c, d...}
  L6 a list Export-Csv wrote as its .NET type name (System.Collections...)
Other codes: L1 not Format-List/CSV output, L2 unknown property (warning),
L3 bad value, L4 missing property; E1-E3, W1-W2 as in `s2spec validate`.

Exit status: 0 imported (warnings allowed), 1 errors (nothing written),
2 the file cannot be read or the output written.")]
pub struct ImportArgs {
    /// Get-CsXmppAllowedPartner output: Format-List text or Export-Csv.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to write the partner set (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A domain the target serves itself, for `[local]` (repeatable).
    #[arg(long, value_name = "DOMAIN")]
    local_domain: Vec<String>,
}

pub fn import(args: ImportArgs) -> u8 {
    let shown = args.file.display().to_string();
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("s2spec import-lync: cannot read {shown}: {e}");
            return exit::TROUBLE;
        }
    };
    let text = match decode(&bytes) {
        Some(t) => t,
        None => {
            eprintln!("{shown}:1:1: L1: neither UTF-8 nor UTF-16 text");
            return exit::FAILED;
        }
    };
    let local = Local {
        domains: args
            .local_domain
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        users: Vec::new(),
    };
    let imported = import::import_str(&text, &shown, local);
    for d in &imported.diagnostics {
        eprintln!("{d}");
    }
    if imported.has_errors() {
        let errors = imported
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        eprintln!("{shown}: {errors} error(s); nothing imported");
        return exit::FAILED;
    }
    let toml = import::partner_toml(&imported.loaded.set, &shown);
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &toml) {
                eprintln!("s2spec import-lync: cannot write {}: {e}", path.display());
                return exit::TROUBLE;
            }
            eprintln!(
                "{}: {} partner(s) from {shown}",
                path.display(),
                imported.loaded.set.partners.len()
            );
        }
        None => super::print_stdout(&toml),
    }
    exit::OK
}

/// UTF-8 (with or without a BOM), or UTF-16 with a BOM: Windows
/// PowerShell 5.1 writes `>` redirections as UTF-16LE.
fn decode(bytes: &[u8]) -> Option<String> {
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).ok()
    };
    match bytes {
        [0xff, 0xfe, ..] => utf16(true),
        [0xfe, 0xff, ..] => utf16(false),
        _ => String::from_utf8(bytes.to_vec()).ok(),
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints one New-CsXmppAllowedPartner command per partner of the partner-set
file, every setting spelled out, strings as PowerShell literals.

Exit status: 0 printed, 1 the file has validation errors, 2 it cannot be read
or parsed.")]
pub struct ExportArgs {
    /// A partner-set file (TOML, SPEC §2.1).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn export(args: ExportArgs) -> u8 {
    let loaded = match partner::load_file(&args.file) {
        Ok(l) => l,
        Err(e @ partner::LoadError::Io { .. }) => {
            eprintln!("s2spec export-lync: {e}");
            return exit::TROUBLE;
        }
        Err(partner::LoadError::Parse(diagnostics)) => {
            for d in diagnostics {
                eprintln!("{d}");
            }
            return exit::TROUBLE;
        }
    };
    let diagnostics = partner::validate(&loaded);
    for d in &diagnostics {
        eprintln!("{d}");
    }
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return exit::FAILED;
    }
    super::print_stdout(&export::new_commands(
        &loaded.set,
        &args.file.display().to_string(),
    ));
    exit::OK
}
