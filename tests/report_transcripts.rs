//! `--transcripts all|failing|none`: which transcripts the reports keep, and
//! how every rendering says that one was left out.

use std::path::PathBuf;
use std::time::Duration;

use s2spec::report::{
    CaseResult, Report, RunInfo, Transcripts, Verdict, html_string, junit_string, markdown_string,
    read_json, write_json,
};
use s2spec::stream::{Dir, Entry, EntryKind};

fn run_info() -> RunInfo {
    RunInfo {
        s2spec_version: "0.1.0".into(),
        target: "reference".into(),
        faults: vec![],
        policy: "lync".into(),
        started: "2026-01-02T03:04:05Z".into(),
        finished: "2026-01-02T03:04:17Z".into(),
        duration_ms: 10,
        transcripts: None,
        selection: None,
        interrupted: false,
    }
}

fn case(id: &str, verdict: Verdict) -> CaseResult {
    CaseResult {
        id: id.into(),
        family: "plain".into(),
        description: format!("checks {id}"),
        verdict,
        expected: None,
        observed: None,
        messages: match verdict {
            Verdict::Pass => vec![],
            v => vec![format!("{v}: about {id}")],
        },
        deviations: Vec::new(),
        duration_ms: 3,
        waited: Vec::new(),
        transcript: (0..3)
            .map(|i| Entry {
                at: Duration::from_millis(i * 5),
                stream: 1,
                dir: Dir::Sent,
                tls: false,
                kind: EntryKind::Xml,
                text: format!("<line n='{i}' case='{id}'/>"),
            })
            .collect(),
    }
}

fn sample() -> Report {
    Report::new(
        run_info(),
        vec![
            case("matrix/in/t-RR1/p-RR1/valid/srv", Verdict::Pass),
            case("matrix/in/t-NN1/p-NN1/valid/srv", Verdict::Fail),
            case("matrix/in/t-OO1/p-OO1/valid/srv", Verdict::NonStrict),
            case("rfc6120/4.9/bad-ns", Verdict::Error),
        ],
    )
}

fn temp_file(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "s2spec-report-transcripts-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("report.json")
}

fn transcript_len(r: &Report, id: &str) -> usize {
    r.cases
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.transcript.len())
        .unwrap_or(usize::MAX)
}

#[test]
fn failing_keeps_only_non_passing_transcripts() {
    let mut r = sample();
    r.keep_transcripts(Transcripts::Failing);
    assert_eq!(transcript_len(&r, "matrix/in/t-RR1/p-RR1/valid/srv"), 0);
    assert_eq!(transcript_len(&r, "matrix/in/t-NN1/p-NN1/valid/srv"), 3);
    assert_eq!(transcript_len(&r, "matrix/in/t-OO1/p-OO1/valid/srv"), 3);
    assert_eq!(transcript_len(&r, "rfc6120/4.9/bad-ns"), 3);
    assert_eq!(r.run.transcripts, Some(Transcripts::Failing));

    let path = temp_file("failing");
    write_json(&r, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"transcripts\": \"failing\""), "{text}");
    // One transcript entry per line: compact below the case's lists.
    let entry_lines: Vec<&str> = text.lines().filter(|l| l.contains("<line n=")).collect();
    assert_eq!(entry_lines.len(), 9, "{text}");
    assert!(
        entry_lines
            .iter()
            .all(|l| l.trim_start().starts_with("{\"at\":"))
    );
    assert_eq!(read_json(&path).unwrap(), r);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());

    let html = html_string(&r);
    assert!(html.contains("Transcript omitted (--transcripts failing)."));
    assert!(!html.contains("case='matrix/in/t-RR1"));
    let md = markdown_string(&r);
    assert!(md.contains("case='matrix/in/t-NN1"));
}

#[test]
fn fail_keeps_only_failing_and_error_transcripts() {
    let mut r = sample();
    r.keep_transcripts(Transcripts::Fail);
    assert_eq!(transcript_len(&r, "matrix/in/t-RR1/p-RR1/valid/srv"), 0);
    assert_eq!(transcript_len(&r, "matrix/in/t-NN1/p-NN1/valid/srv"), 3);
    // Non-strict: left out, and the renderings say so.
    assert_eq!(transcript_len(&r, "matrix/in/t-OO1/p-OO1/valid/srv"), 0);
    assert_eq!(r.run.transcripts, Some(Transcripts::Fail));
    assert!(markdown_string(&r).contains("Transcript omitted (--transcripts fail)."));
}

#[test]
fn none_says_so_in_markdown_html_and_junit() {
    let mut r = sample();
    r.keep_transcripts(Transcripts::None);
    assert!(r.cases.iter().all(|c| c.transcript.is_empty()));
    let note = "Transcript omitted (--transcripts none).";
    let md = markdown_string(&r);
    // Three non-passing cases, each with its detail in report.md.
    assert_eq!(md.matches(note).count(), 3, "{md}");
    let html = html_string(&r);
    assert_eq!(html.matches(note).count(), 4);
    let junit = junit_string(&r);
    // fail and error carry a body; non-strict does not.
    assert_eq!(junit.matches(note).count(), 2, "{junit}");
    assert!(junit.contains("name=\"transcripts\" value=\"none\""));
}

#[test]
fn all_keeps_everything_and_old_reports_say_no_transcript() {
    let mut r = sample();
    r.keep_transcripts(Transcripts::All);
    assert!(r.cases.iter().all(|c| c.transcript.len() == 3));

    // A report without the field (older files) keeps what it has; an empty
    // transcript there is simply absent.
    let mut old = sample();
    for c in &mut old.cases {
        c.transcript.clear();
    }
    let path = temp_file("old");
    write_json(&old, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("\"transcripts\""));
    let back = read_json(&path).unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    assert_eq!(back.run.transcripts, None);
    let md = markdown_string(&back);
    assert!(md.contains("No transcript."));
    assert!(!md.contains("omitted"));
}

#[test]
fn the_flag_spellings() {
    for (s, t) in [
        ("all", Transcripts::All),
        ("failing", Transcripts::Failing),
        ("fail", Transcripts::Fail),
        ("none", Transcripts::None),
    ] {
        assert_eq!(s.parse::<Transcripts>().unwrap(), t);
    }
    assert!(
        "some"
            .parse::<Transcripts>()
            .unwrap_err()
            .to_string()
            .contains("failing")
    );
}
