//! Release gates through the binary: `baseline`, `run --baseline`, `diff`
//! and `merge`, on real runs of a slice of the matrix against the reference
//! target with fault switches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use s2spec::report::{Report, Verdict, read_json};

mod child;
use child::run;

/// 33 cases; the first fault below makes several of them deviate, the
/// second a few others.
const SLICE: &str = "matrix/in/t-RO1/";
const FAULT: &str = "accept-invalid-cert";
const SECOND_FAULT: &str = "skip-dialback-verify";

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli_gate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `s2spec run --filter SLICE` with `faults` and `extra` into `dir`.
fn run_slice(dir: &Path, faults: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["run", "--filter", SLICE, "--report-dir", s(dir)];
    for f in faults {
        args.extend(["--reference-fault", f]);
    }
    args.extend_from_slice(extra);
    run(&args)
}

/// The run with the first fault and its baseline, made once.
fn known_fault() -> &'static (PathBuf, Report) {
    static RUN: OnceLock<(PathBuf, Report)> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = temp_dir("known");
        let out = run_slice(&dir.join("run"), &[FAULT], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let baseline = dir.join("baseline.toml");
        let out = run(&[
            "baseline",
            s(&dir.join("run/report.json")),
            "--out",
            s(&baseline),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let report = read_json(&dir.join("run/report.json")).unwrap();
        (dir, report)
    })
}

fn with(r: &Report, keep: impl Fn(Verdict) -> bool) -> Vec<String> {
    r.cases
        .iter()
        .filter(|c| keep(c.verdict))
        .map(|c| c.id.clone())
        .collect()
}

fn failing(r: &Report) -> Vec<String> {
    with(r, |v| v == Verdict::Fail)
}

fn non_passing(r: &Report) -> Vec<String> {
    with(r, |v| v != Verdict::Pass)
}

#[test]
fn a_known_fault_passes_the_gate_and_a_second_fault_fails_it() {
    let (dir, known) = known_fault();
    let baseline = dir.join("baseline.toml");
    let file = std::fs::read_to_string(&baseline).unwrap();
    let listed = non_passing(known).len();
    assert_eq!(file.matches("[[known]]").count(), listed);
    assert!(failing(known).len() >= 3, "the fault is seen");
    assert!(file.contains("reason = \"\""));

    let same = temp_dir("same");
    let out = run_slice(&same, &[FAULT], &["--baseline", s(&baseline)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&format!("{listed} known deviation(s), 0 new or worse")));
    let report = read_json(&same.join("report.json")).unwrap();
    let b = report.baseline.as_ref().expect("baseline section");
    assert_eq!(b.known.len(), listed);
    assert!(b.new.is_empty() && b.fixed.is_empty());
    let md = std::fs::read_to_string(same.join("report.md")).unwrap();
    assert!(md.contains("## Baseline") && md.contains("### Known deviations"));
    let html = std::fs::read_to_string(same.join("report.html")).unwrap();
    assert!(html.contains("<section id=\"baseline\">"));
    let junit = std::fs::read_to_string(same.join("junit.xml")).unwrap();
    assert_eq!(
        junit.matches("type=\"known-deviation\"").count(),
        failing(known).len()
    );
    assert!(
        !junit.contains("<failure"),
        "known deviations are not failures"
    );

    let worse = temp_dir("worse");
    let out = run_slice(
        &worse,
        &[FAULT, SECOND_FAULT],
        &["--baseline", s(&baseline)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = read_json(&worse.join("report.json")).unwrap();
    let b = report.baseline.as_ref().unwrap();
    let new: Vec<&str> = b.new.iter().map(|c| c.id.as_str()).collect();
    // Every case whose verdict got worse than under the first fault alone.
    let before: BTreeMap<String, Verdict> = verdicts(known);
    let expected: Vec<String> = report
        .cases
        .iter()
        .filter(|c| s2spec::gate::worse(before[&c.id], c.verdict))
        .map(|c| c.id.clone())
        .collect();
    assert!(!expected.is_empty(), "the second fault is seen");
    assert_eq!(new, expected);
    assert!(text(&out).contains("gate: FAILED"));
    let junit = std::fs::read_to_string(worse.join("junit.xml")).unwrap();
    let unknown_failures = report
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail && b.known_case(&c.id).is_none())
        .count();
    assert_eq!(junit.matches("<failure").count(), unknown_failures);

    // diff names every new failure, and NEW is worse.
    let out = run(&[
        "diff",
        s(&dir.join("run/report.json")),
        s(&worse.join("report.json")),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let named: Vec<&str> = d["new_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(named, expected);
    let out = run(&[
        "diff",
        s(&dir.join("run/report.json")),
        s(&worse.join("report.json")),
        "--format",
        "markdown",
    ]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("### s2spec: ❌"), "{md}");
    for id in &expected {
        assert!(md.contains(&format!("| `{id}` | pass → ")), "{md}");
    }
    // The other way round nothing got worse: the new failures are fixed.
    let out = run(&[
        "diff",
        s(&worse.join("report.json")),
        s(&dir.join("run/report.json")),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("fixed ({}):", expected.len())),
        "{}",
        text(&out)
    );
}

#[test]
fn fixed_entries_are_reported_and_fail_only_a_strict_baseline() {
    let (dir, known) = known_fault();
    let entries = non_passing(known).len();
    let baseline = dir.join("baseline.toml");
    let clean = temp_dir("clean");
    let out = run_slice(&clean, &[], &["--baseline", s(&baseline)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = read_json(&clean.join("report.json")).unwrap();
    assert_eq!(report.baseline.as_ref().unwrap().fixed.len(), entries);
    assert!(text(&out).contains("remove the entry"));
    let out = run_slice(
        &clean,
        &[],
        &["--baseline", s(&baseline), "--baseline-strict"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--baseline-strict"));
    let junit = std::fs::read_to_string(clean.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("type=\"fixed-entry\"").count(), entries);
}

#[test]
fn a_pattern_covers_many_cases() {
    let (dir, known) = known_fault();
    let patterned = dir.join("pattern.toml");
    // Every failing case of the known fault is an inbound case of t-RO1;
    // its other deviations are listed one by one.
    let mut file = String::from(
        "[[known]]\ncase = \"matrix/in/t-RO1/**\"\nverdict = \"fail\"\nreason = \"vendor ticket 7\"\n",
    );
    for c in known
        .cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::Fail))
    {
        file.push_str(&format!(
            "[[known]]\ncase = \"{}\"\nverdict = \"{}\"\n",
            c.id, c.verdict
        ));
    }
    std::fs::write(&patterned, file).unwrap();
    let out_dir = temp_dir("pattern");
    let out = run_slice(&out_dir, &[FAULT], &["--baseline", s(&patterned)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = read_json(&out_dir.join("report.json")).unwrap();
    let b = report.baseline.unwrap();
    assert_eq!(b.known.len(), non_passing(known).len());
    let by_pattern: Vec<&str> = b
        .known
        .iter()
        .filter(|k| k.reason == "vendor ticket 7")
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(by_pattern, failing(known));
}

#[test]
fn bad_baseline_files_exit_2_with_file_and_line() {
    let dir = temp_dir("bad");
    let cases = [
        (
            "verdict.toml",
            "[[known]]\ncase = \"x\"\nverdict = \"failed\"\n",
            ":3:11: unknown verdict `failed`",
        ),
        (
            "pass.toml",
            "[[known]]\ncase = \"x\"\nverdict = \"pass\"\n",
            ":3:11: verdict `pass`",
        ),
        ("syntax.toml", "\n[[known]\n", ":2:"),
        (
            "field.toml",
            "[[known]]\ncase = \"x\"\nverdict = \"fail\"\nwhy = 1\n",
            ":4:1: unknown field `why`",
        ),
        (
            "missing.toml",
            "[[known]]\nverdict = \"fail\"\n",
            ":1:1: missing field `case`",
        ),
        (
            "twice.toml",
            "[[known]]\ncase = \"x\"\nverdict = \"fail\"\n[[known]]\ncase = \"x\"\nverdict = \"error\"\n",
            ":5:8: `x` is listed twice (first on line 2)",
        ),
        (
            "target.toml",
            "target = \"prosody\"\n",
            ":1:1: the baseline is for target `prosody`, the run's is `reference`",
        ),
    ];
    for (name, body, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        let out = run(&[
            "run",
            "--filter",
            "matrix/in/t-RO1/p-OO1/valid/srv",
            "--baseline",
            s(&path),
            "--report-dir",
            s(&dir.join("reports")),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}{want}", path.display())),
            "{name}: {err}"
        );
    }
    // Nothing ran: a bad baseline is found before the run starts.
    assert!(!dir.join("reports/report.json").exists());
    let out = run(&["run", "--baseline-strict"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--baseline-strict needs --baseline"
    );
    let out = run(&["baseline", s(&dir.join("no-such.json"))]);
    assert_eq!(out.status.code(), Some(2));
}

fn verdicts(r: &Report) -> BTreeMap<String, Verdict> {
    r.cases.iter().map(|c| (c.id.clone(), c.verdict)).collect()
}

#[test]
fn merged_shards_reproduce_the_full_run() {
    let (dir, full) = known_fault();
    let shards = temp_dir("shards");
    for k in ["1/2", "2/2"] {
        let out = run_slice(
            &shards.join(k.replace('/', "-")),
            &[FAULT],
            &["--partition", k],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
    let (a, b) = (
        shards.join("1-2/report.json"),
        shards.join("2-2/report.json"),
    );
    let merged = shards.join("merged");
    let out = run(&[
        "merge",
        "--report-dir",
        s(&merged),
        "--baseline",
        s(&dir.join("baseline.toml")),
        s(&b),
        s(&a),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = read_json(&merged.join("report.json")).unwrap();
    assert_eq!(verdicts(&m), verdicts(full));
    assert_eq!(m.summary, full.summary);
    assert!(m.run.selection.as_ref().unwrap().partition.is_none());
    for f in ["junit.xml", "report.md", "report.html"] {
        assert!(merged.join(f).is_file(), "{f}");
    }
    // Without the baseline the merged run fails like the full run.
    let out = run(&["merge", "--report-dir", s(&merged), s(&a), s(&b)]);
    assert_eq!(out.status.code(), Some(1));
    // The merged report diffs clean against the full run.
    let out = run(&[
        "diff",
        s(&dir.join("run/report.json")),
        s(&merged.join("report.json")),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("0 new failure(s), 0 missing, 0 fixed, 0 other verdict change(s), 0 message change(s), 0 transcript change(s)"), "{}", text(&out));

    let refused = |args: &[&str], want: &str| {
        let mut all = vec!["merge", "--report-dir"];
        let target = shards.join("refused");
        all.push(s(&target));
        all.extend_from_slice(args);
        let out = run(&all);
        assert_eq!(out.status.code(), Some(2), "{want}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{want}: {err}");
    };
    refused(&[s(&a), s(&a)], "shard 1/2 is also");
    refused(&[s(&a)], "shard(s) 2/2 of 2 missing");
    // A full run overlaps a shard (and is no shard).
    refused(&[s(&a), s(&dir.join("run/report.json"))], "not a shard");
    // A shard of another target.
    let mut other = read_json(&b).unwrap();
    other.run.target = "prosody".into();
    let other_path = shards.join("other.json");
    s2spec::report::write_json(&other, &other_path).unwrap();
    refused(&[s(&a), s(&other_path)], "target is `prosody`, but");
    // Overlapping cases under distinct partitions (a hand-made shard).
    let mut overlap = read_json(&b).unwrap();
    overlap.cases.push(read_json(&a).unwrap().cases[0].clone());
    let overlap_path = shards.join("overlap.json");
    s2spec::report::write_json(&overlap, &overlap_path).unwrap();
    refused(&[s(&a), s(&overlap_path)], "1 case(s) also in");
    refused(&[s(&shards.join("none.json"))], "cannot read");
}
