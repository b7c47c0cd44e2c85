//! `s2spec matrix`: SPEC §4's 18-row table, computed — the methods by the
//! oracle's rule, the codes by running the real validator on a one-partner set
//! per row, so the table shows what the product actually does.

use serde::Serialize;

use crate::partner::{Diagnostic, Method, Negotiation, load_str, methods, validate};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Columns: tls, sasl, dialback, the methods the combination admits, \
whether it can be saved (no E-code), and the diagnostic codes the validator gives it."
)]
pub struct Args {
    /// Output format: a Markdown table or a JSON array.
    #[arg(long, value_enum, default_value = "md")]
    format: Format,
}

#[derive(Debug, Serialize)]
struct Row {
    tls: &'static str,
    sasl: &'static str,
    dialback: bool,
    methods: Vec<Method>,
    valid: bool,
    codes: Vec<String>,
}

pub fn run(args: Args) -> u8 {
    let rows = match rows() {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("s2spec: {e}");
            return super::exit::TROUBLE;
        }
    };
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&rows) {
            Ok(json) => super::print_stdout(&format!("{json}\n")),
            Err(e) => {
                eprintln!("s2spec: {e}");
                return super::exit::TROUBLE;
            }
        },
        Format::Md => super::print_stdout(&markdown(&rows)),
    }
    super::exit::OK
}

fn rows() -> Result<Vec<Row>, RowError> {
    Negotiation::all().map(row).collect()
}

/// The one-partner set of a row did not load (a bug of this command).
#[derive(Debug, thiserror::Error)]
#[error(
    "internal partner set did not load: {}",
    .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
)]
struct RowError(Vec<Diagnostic>);

fn row(n: Negotiation) -> Result<Row, RowError> {
    let text = format!(
        "[[partner]]\ndomain = \"row.example\"\ntype = \"federated\"\n\
         tls = \"{}\"\nsasl = \"{}\"\ndialback = {}\n",
        n.tls, n.sasl, n.dialback
    );
    let loaded = load_str(&text, "<matrix>").map_err(RowError)?;
    let mut codes: Vec<String> = validate(&loaded).into_iter().map(|d| d.code).collect();
    codes.sort();
    codes.dedup();
    Ok(Row {
        tls: n.tls.as_str(),
        sasl: n.sasl.as_str(),
        dialback: n.dialback,
        methods: methods(n).to_vec(),
        valid: !codes.iter().any(|c| c.starts_with('E')),
        codes,
    })
}

fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| # | TLS | SASL | Dialback | methods | valid | codes |\n|---|---|---|---|---|---|---|\n",
    );
    for (i, r) in rows.iter().enumerate() {
        let methods = if r.methods.is_empty() {
            "—".to_string()
        } else {
            let titles: Vec<&str> = r.methods.iter().map(|m| m.title()).collect();
            titles.join(", ")
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            r.tls,
            r.sasl,
            r.dialback,
            methods,
            if r.valid { "yes" } else { "no" },
            r.codes.join(", ")
        ));
    }
    out
}
