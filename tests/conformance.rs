//! `cargo test --test conformance`: one trial per case of the matrix against
//! the embedded reference target. Filters, `--list`, `--exact`, `--skip` and
//! `--format json` work as with any test binary; the shared services (PKI,
//! mock DNS, target) start lazily on the first trial, so `--list` is instant.

use std::path::Path;
use std::sync::{Arc, LazyLock, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};
use s2spec::report::Verdict;
use s2spec::run::{Harness, Options};
use s2spec::scenario::{Case, expand, load_matrix};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
});

static HARNESS: OnceLock<Result<Arc<Harness>, String>> = OnceLock::new();

fn harness(all: &[Case]) -> Result<Arc<Harness>, String> {
    HARNESS
        .get_or_init(|| {
            RUNTIME
                .block_on(Harness::start_reference(all, Options::default()))
                .map(Arc::new)
        })
        .clone()
}

fn main() {
    let mut args = Arguments::from_args();
    // Cases mostly wait on the network: many in flight, few CPUs.
    if args.test_threads.is_none() {
        args.test_threads = Some(32);
    }
    let spec = load_matrix(Path::new("scenarios/matrix.toml")).expect("scenarios/matrix.toml");
    let cases = Arc::new(expand(&spec).expect("matrix expands"));
    let trials = cases
        .iter()
        .cloned()
        .map(|case| {
            let all = cases.clone();
            let family = case.family.clone();
            Trial::test(case.id.clone(), move || {
                let harness = harness(&all).map_err(|e| Failed::from(format!("harness: {e}")))?;
                let result = RUNTIME.block_on(harness.run_case(&case));
                match result.verdict {
                    Verdict::Pass | Verdict::NonStrict | Verdict::NotApplicable => Ok(()),
                    Verdict::Fail | Verdict::Error => Err(Failed::from(format!(
                        "{}: {}\nexpected: {:?}\nobserved: {:?}",
                        result.verdict,
                        result.messages.join("\n"),
                        result.expected,
                        result.observed
                    ))),
                }
            })
            .with_kind(family)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    conclusion.exit();
}
