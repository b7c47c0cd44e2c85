#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    s2spec::cli::main()
}
