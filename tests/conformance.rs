//! `cargo test --test conformance`: one trial per case of the matrix and per
//! scripted scenario (`scenarios/<spec>/`) against the embedded reference target. Filters, `--list`, `--exact`, `--skip` and
//! `--format json` work as with any test binary; the shared services (PKI,
//! mock DNS, target) start lazily on the first trial, so `--list` is instant.

use std::path::Path;
use std::sync::{Arc, LazyLock, OnceLock};

use libtest_mimic::{Arguments, Failed, Trial};
use s2spec::report::Verdict;
use s2spec::run::{Harness, Options};
use s2spec::scenario::{Case, load_all};

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
            let options = Options {
                faults: faults_from_env().map_err(|e| e.to_string())?,
                ..Options::default()
            };
            RUNTIME
                .block_on(Harness::start_reference(all, options))
                .map(Arc::new)
                // Cached for every trial, so kept as its message.
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// The reference target's behaviour as a committed snapshot: a change shows
/// up as a diff (`cargo insta review`), and under `CI=true` drift fails.
fn assert_snapshot(result: &s2spec::report::CaseResult) {
    if std::env::var_os("S2SPEC_REFERENCE_FAULT").is_some() {
        return; // a faulty target's transcripts are not the reference's
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::assert_snapshot!(
            s2spec::report::snapshot_name(&result.id),
            s2spec::report::snapshot_text(result)
        );
    });
}

/// `S2SPEC_REFERENCE_FAULT=name[,name]` runs the trials against a faulty
/// reference target, to see what a failure looks like.
fn faults_from_env() -> Result<s2spec::refproxy::Faults, s2spec::UnknownSpelling> {
    let Ok(list) = std::env::var("S2SPEC_REFERENCE_FAULT") else {
        return Ok(s2spec::refproxy::Faults::none());
    };
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse())
        .collect()
}

fn main() {
    let mut args = Arguments::from_args();
    // Cases mostly wait on the network: many in flight, few CPUs.
    if args.test_threads.is_none() {
        args.test_threads = Some(32);
    }
    let cases = load_all(Path::new("scenarios/matrix.toml")).expect("scenarios load");
    let cases = Arc::new(cases);
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
                    Verdict::Pass | Verdict::NonStrict | Verdict::NotApplicable => {
                        assert_snapshot(&result);
                        Ok(())
                    }
                    Verdict::Fail | Verdict::Error => {
                        let tail = result.transcript.len().saturating_sub(20);
                        let lines: Vec<String> = result.transcript[tail..]
                            .iter()
                            .map(s2spec::report::transcript_line)
                            .collect();
                        Err(Failed::from(format!(
                            "{}: {}\nexpected: {:?}\nobserved: {:?}\ntranscript (last {} lines):\n{}",
                            result.verdict,
                            result.messages.join("\n"),
                            result.expected,
                            result.observed,
                            lines.len(),
                            lines.join("\n")
                        )))
                    }
                }
            })
            .with_kind(family)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    conclusion.exit();
}
