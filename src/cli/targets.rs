//! `s2spec targets`: the targets `run --target` accepts — the two built-in
//! ones and every profile in the profile directory, each with the installed
//! server's version or why it cannot run here.

use std::path::PathBuf;

use super::exit;
use crate::target::profile::{Profile, profile_files};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 every profile loaded (installed or not), 2 a profile file \
is invalid (FILE:LINE: the key at fault) or the directory cannot be read."
)]
pub struct Args {
    /// The directory whose NAME.toml files `run --target NAME` loads.
    #[arg(long, value_name = "DIR", default_value = "fixtures/targets")]
    profiles: PathBuf,
}

pub fn run(args: Args) -> u8 {
    if let Err(e) = std::fs::read_dir(&args.profiles) {
        eprintln!("s2spec targets: {}: {e}", args.profiles.display());
        return exit::TROUBLE;
    }
    let mut out = String::from(
        "reference  built in: the embedded reference federation proxy\n\
         external   built in: a server someone else started (--target-addr, --certs)\n",
    );
    let mut code = exit::OK;
    for path in profile_files(&args.profiles) {
        match Profile::load(&path) {
            Ok(p) => {
                let status = match (p.unavailable(), p.version()) {
                    (Some(why), _) => format!("unavailable: {}", why.replace('\n', " ")),
                    (None, Some(version)) => format!("installed: {version}"),
                    (None, None) => "installed (the profile names no version source)".into(),
                };
                out.push_str(&format!(
                    "{:<10} {}\n           {status}\n           profile: {}\n",
                    p.name,
                    p.description,
                    path.display()
                ));
            }
            Err(e) => {
                eprintln!("s2spec targets: {e}");
                code = exit::TROUBLE;
            }
        }
    }
    super::print_stdout(&out);
    code
}
