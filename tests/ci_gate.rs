//! `scripts/ci-gate.sh`, the one script both CI recipes in `docs/ci/` call,
//! run locally against the reference target on a slice of the matrix: a
//! known fault under a baseline made from its run passes the gate, a second
//! fault fails it, and the Markdown diff names the new failures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SLICE: &str = "--filter matrix/in/t-RO1/";
const FAULT: &str = "--reference-fault accept-invalid-cert";
const SECOND_FAULT: &str = "--reference-fault skip-dialback-verify";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ci_gate-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `scripts/ci-gate.sh ARGS` with the built binary and `env`; the script
/// runs s2spec in the foreground, so it has stopped when this returns.
fn script(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/ci-gate.sh"))
        .args(args)
        .current_dir(root())
        .env("S2SPEC", env!("CARGO_BIN_EXE_s2spec"))
        .env_remove("S2SPEC_BASELINE")
        .env_remove("S2SPEC_PREVIOUS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run bash")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_gate_holds_for_known_faults_and_fails_for_a_new_one() {
    let dir = temp_dir("gate");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let first = dir.join("first");
    let known = format!("{SLICE} {FAULT}");
    // Without a baseline, failing cases fail the gate.
    let out = script(
        &["all"],
        &[("S2SPEC_OUT", &s(&first)), ("S2SPEC_RUN_ARGS", &known)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for k in ["shard-1", "shard-2", "merged"] {
        assert!(first.join(k).join("report.json").is_file(), "{k}");
    }
    assert!(first.join("merged/junit.xml").is_file());

    let baseline = dir.join("baseline.toml");
    let made = Command::new(env!("CARGO_BIN_EXE_s2spec"))
        .args(["baseline", &s(&first.join("merged/report.json"))])
        .args(["--out", &s(&baseline)])
        .output()
        .unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    let previous = s(&first.join("merged/report.json"));

    // The same fault under its baseline: the gate holds; the diff says so.
    let second = dir.join("second");
    let out = script(
        &["all"],
        &[
            ("S2SPEC_OUT", &s(&second)),
            ("S2SPEC_RUN_ARGS", &known),
            ("S2SPEC_BASELINE", &s(&baseline)),
            ("S2SPEC_PREVIOUS", &previous),
            ("S2SPEC_SHARDS", "3"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(second.join("shard-3/report.json").is_file());
    let diff = std::fs::read_to_string(second.join("diff.md")).unwrap();
    assert!(diff.contains("nothing new broke"), "{diff}");

    // A second fault: new failures, the gate fails and the diff names them.
    let third = dir.join("third");
    let out = script(
        &["all"],
        &[
            ("S2SPEC_OUT", &s(&third)),
            ("S2SPEC_RUN_ARGS", &format!("{known} {SECOND_FAULT}")),
            ("S2SPEC_BASELINE", &s(&baseline)),
            ("S2SPEC_PREVIOUS", &previous),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let diff = std::fs::read_to_string(third.join("diff.md")).unwrap();
    assert!(diff.contains("worse than before"), "{diff}");
    let merged = s2spec::report::read_json(&third.join("merged/report.json")).unwrap();
    let new = &merged.baseline.as_ref().unwrap().new;
    // skip-dialback-verify accepts dialback from the four t-RO1 peers whose
    // authoritative server is unreachable (nxdomain, srv-to-dead-port,
    // srv-dot, authoritative-unreachable).
    assert_eq!(new.len(), 4);
    for c in new {
        assert!(
            diff.contains(&format!("| `{}` | pass → fail |", c.id)),
            "{diff}"
        );
    }

    // The steps the CI jobs call one by one.
    let fourth = dir.join("fourth");
    let env = [
        ("S2SPEC_OUT", s(&fourth)),
        ("S2SPEC_RUN_ARGS", known.clone()),
        ("S2SPEC_BASELINE", s(&baseline)),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = script(&["gate"], &env);
    assert_eq!(out.status.code(), Some(2), "no shards yet: {}", text(&out));
    for k in ["1", "2"] {
        let out = script(&["shard", k, "2"], &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let out = script(&["gate"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn bad_invocations_exit_2() {
    for args in [&[][..], &["shard", "x", "2"], &["nonsense"]] {
        let out = script(args, &[("S2SPEC_OUT", "/nonexistent-ci-out")]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    // Harness trouble in a shard stops the script.
    let dir = temp_dir("trouble");
    let out = script(
        &["shard", "1", "2"],
        &[
            ("S2SPEC_OUT", dir.to_str().unwrap()),
            ("S2SPEC_RUN_ARGS", "--filter no/such/case"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no case matches"));
}

#[test]
fn both_recipes_call_the_script() {
    for recipe in ["docs/ci/github-actions.yml", "docs/ci/gitlab-ci.yml"] {
        let text = std::fs::read_to_string(root().join(recipe)).unwrap();
        assert!(text.contains("scripts/ci-gate.sh shard"), "{recipe}");
        assert!(text.contains("scripts/ci-gate.sh gate"), "{recipe}");
        assert!(text.contains("junit.xml"), "{recipe}");
        assert!(text.contains("S2SPEC_BASELINE"), "{recipe}");
        assert!(text.contains("diff.md"), "{recipe}");
        // Only the script runs the gate: no direct merge or diff in the YAML.
        assert!(
            !text.contains("s2spec merge") && !text.contains("s2spec diff"),
            "{recipe}"
        );
    }
}
