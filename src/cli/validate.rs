//! (placeholder: filled in by its issue)

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> u8 {
    eprintln!("s2spec: this command is not implemented yet");
    super::exit::TROUBLE
}
