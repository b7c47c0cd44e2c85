//! `s2spec list`: the case ids with one-line descriptions.

use std::path::PathBuf;

use super::{exit, run};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only ids containing PATTERN (repeatable: any matches).
    #[arg(long, value_name = "PATTERN")]
    filter: Vec<String>,
    /// The matrix file.
    #[arg(long, value_name = "FILE", default_value = "scenarios/matrix.toml")]
    matrix: PathBuf,
}

pub fn run(args: Args) -> u8 {
    let cases = match run::load_cases(&args.matrix) {
        Ok(cases) => run::select(cases, &args.filter, &[], None),
        Err(e) => {
            eprintln!("s2spec list: {e}");
            return exit::TROUBLE;
        }
    };
    let mut out = String::new();
    for c in &cases {
        out.push_str(&format!("{}  {}\n", c.id, c.description));
    }
    super::print_stdout(&out);
    eprintln!("{} cases", cases.len());
    exit::OK
}
