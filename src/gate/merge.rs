//! Merging the shards of a `--partition`ed run into one report.
//!
//! Shards must come from the same s2spec version, target, policy, fault
//! switches and selection (`--filter`/`--skip`); partitioned shards must all
//! be parts of the same N, each part exactly once and none missing; no case
//! may appear in two shards. Any violation is refused with the reason.

use std::collections::HashMap;

use crate::report::{Partition, Report, RunInfo, Selection, Transcripts};

/// Why shards cannot be merged. Files are named as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: give at least one report")]
    Empty,
    #[error(
        "{file}: {field} is `{value}`, but {first} has `{first_value}`; shards of different runs cannot be merged"
    )]
    Mismatch {
        file: String,
        field: &'static str,
        value: String,
        first: String,
        first_value: String,
    },
    #[error(
        "{file}: not a shard (no --partition) while {other} is shard {partition}; merge the shards of one partitioned run"
    )]
    Unpartitioned {
        file: String,
        other: String,
        partition: Partition,
    },
    #[error("{file}: shard {partition} is also {other}; each shard once")]
    SamePartition {
        file: String,
        other: String,
        partition: Partition,
    },
    #[error("shard(s) {} of {n} missing; the merged report would not be the full run", missing.join(", "))]
    Missing { n: usize, missing: Vec<String> },
    #[error("{file}: the run was interrupted, so the shard is incomplete; run it again")]
    Interrupted { file: String },
    #[error("{file}: {count} case(s) also in {other}, e.g. {id}; shards must not overlap")]
    Overlap {
        file: String,
        other: String,
        id: String,
        count: usize,
    },
}

fn selection_text(s: &Option<Selection>) -> String {
    match s {
        Some(s) => format!("filter {:?}, skip {:?}", s.filter, s.skip),
        None => "unrecorded".to_string(),
    }
}

/// What has to be equal across shards, as (field, spelling).
fn identity(run: &RunInfo) -> [(&'static str, String); 5] {
    let mut faults = run.faults.clone();
    faults.sort();
    [
        ("s2spec_version", run.s2spec_version.clone()),
        ("target", run.target.clone()),
        ("policy", run.policy.clone()),
        ("faults", faults.join(",")),
        ("selection", selection_text(&run.selection)),
    ]
}

/// How much of the transcripts a mode keeps (an unrecorded mode kept all).
fn keeps(mode: Option<Transcripts>) -> u8 {
    match mode {
        None | Some(Transcripts::All) => 3,
        Some(Transcripts::Failing) => 2,
        Some(Transcripts::Fail) => 1,
        Some(Transcripts::None) => 0,
    }
}

/// Merges `shards` (file name, report) into one report of the whole run.
pub fn merge(shards: &[(String, Report)]) -> Result<Report, MergeError> {
    let (first_file, first) = shards.first().ok_or(MergeError::Empty)?;
    if let Some((file, _)) = shards.iter().find(|(_, r)| r.run.interrupted) {
        return Err(MergeError::Interrupted { file: file.clone() });
    }
    let reference = identity(&first.run);
    for (file, r) in &shards[1..] {
        let id = identity(&r.run);
        // Compare without the partition (it differs by design).
        for ((field, ours), (_, theirs)) in reference.iter().zip(id.iter()) {
            if ours != theirs {
                return Err(MergeError::Mismatch {
                    file: file.clone(),
                    field,
                    value: theirs.clone(),
                    first: first_file.clone(),
                    first_value: ours.clone(),
                });
            }
        }
    }
    let partition = |r: &Report| r.run.selection.as_ref().and_then(|s| s.partition);
    if let Some((pfile, p)) = shards
        .iter()
        .find_map(|(f, r)| partition(r).map(|p| (f.clone(), p)))
    {
        let mut seen: HashMap<usize, &str> = HashMap::new();
        for (file, r) in shards {
            let Some(q) = partition(r) else {
                return Err(MergeError::Unpartitioned {
                    file: file.clone(),
                    other: pfile,
                    partition: p,
                });
            };
            if q.n != p.n {
                return Err(MergeError::Mismatch {
                    file: file.clone(),
                    field: "partition",
                    value: q.to_string(),
                    first: pfile,
                    first_value: p.to_string(),
                });
            }
            if let Some(other) = seen.insert(q.k, file) {
                return Err(MergeError::SamePartition {
                    file: file.clone(),
                    other: other.to_string(),
                    partition: q,
                });
            }
        }
        let missing: Vec<String> = (1..=p.n)
            .filter(|k| !seen.contains_key(k))
            .map(|k| format!("{k}/{}", p.n))
            .collect();
        if !missing.is_empty() {
            return Err(MergeError::Missing { n: p.n, missing });
        }
    }
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for (file, r) in shards {
        let clashes: Vec<&str> = r
            .cases
            .iter()
            .map(|c| c.id.as_str())
            .filter(|id| owner.contains_key(id))
            .collect();
        if let Some(id) = clashes.first() {
            return Err(MergeError::Overlap {
                file: file.clone(),
                other: owner.get(id).copied().unwrap_or_default().to_string(),
                id: id.to_string(),
                count: clashes.len(),
            });
        }
        for c in &r.cases {
            owner.insert(c.id.as_str(), file.as_str());
        }
    }

    let runs: Vec<&RunInfo> = shards.iter().map(|(_, r)| &r.run).collect();
    let mut run = first.run.clone();
    // RFC 3339 UTC timestamps of one s2spec order as strings.
    run.started = runs
        .iter()
        .map(|r| r.started.clone())
        .min()
        .unwrap_or_default();
    run.finished = runs
        .iter()
        .map(|r| r.finished.clone())
        .max()
        .unwrap_or_default();
    // Shards run side by side: the run took as long as its longest shard.
    run.duration_ms = runs.iter().map(|r| r.duration_ms).max().unwrap_or(0);
    // The merged file keeps no more than its most frugal shard did.
    run.transcripts = runs
        .iter()
        .map(|r| r.transcripts)
        .min_by_key(|m| keeps(*m))
        .flatten();
    if let Some(s) = &mut run.selection {
        s.partition = None;
    }
    let cases = shards.iter().flat_map(|(_, r)| r.cases.clone()).collect();
    Ok(Report::new(run, cases))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CaseResult, Verdict};

    fn case(id: &str) -> CaseResult {
        CaseResult {
            id: id.into(),
            family: "plain".into(),
            description: String::new(),
            verdict: Verdict::Pass,
            expected: None,
            observed: None,
            messages: vec![],
            deviations: vec![],
            duration_ms: 1,
            waited: Vec::new(),
            transcript: vec![],
        }
    }

    fn shard(k: usize, n: usize, ids: &[&str]) -> Report {
        Report::new(
            RunInfo {
                s2spec_version: "0.1.0".into(),
                target: "reference".into(),
                faults: vec![],
                policy: "lync".into(),
                started: format!("2026-01-01T00:00:0{k}Z"),
                finished: format!("2026-01-01T00:01:0{k}Z"),
                duration_ms: 100 * k as u64,
                transcripts: Some(Transcripts::Failing),
                selection: Some(Selection {
                    filter: vec!["matrix/".into()],
                    skip: vec![],
                    partition: Some(Partition { k, n }),
                }),
                interrupted: false,
            },
            ids.iter().map(|i| case(i)).collect(),
        )
    }

    fn named(v: Vec<Report>) -> Vec<(String, Report)> {
        v.into_iter()
            .enumerate()
            .map(|(i, r)| (format!("s{}.json", i + 1), r))
            .collect()
    }

    #[test]
    fn shards_merge_into_the_whole() {
        let m = merge(&named(vec![
            shard(2, 2, &["b", "d"]),
            shard(1, 2, &["a", "c"]),
        ]))
        .unwrap();
        let ids: Vec<&str> = m.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert_eq!(m.summary.total, 4);
        assert_eq!(m.summary.pass, 4);
        assert_eq!(m.run.started, "2026-01-01T00:00:01Z");
        assert_eq!(m.run.finished, "2026-01-01T00:01:02Z");
        assert_eq!(m.run.duration_ms, 200);
        let sel = m.run.selection.unwrap();
        assert_eq!(
            (sel.filter, sel.partition),
            (vec!["matrix/".to_string()], None)
        );
    }

    #[test]
    fn an_interrupted_shard_is_refused() {
        let mut b = shard(2, 2, &["matrix/b"]);
        b.run.interrupted = true;
        let err = merge(&[
            ("a.json".into(), shard(1, 2, &["matrix/a"])),
            ("b.json".into(), b),
        ])
        .unwrap_err();
        assert!(
            err.to_string().contains("b.json: the run was interrupted"),
            "{err}"
        );
    }

    #[test]
    fn every_refusal_names_its_reason() {
        let err = |v: Vec<Report>| merge(&named(v)).unwrap_err().to_string();
        assert_eq!(merge(&[]).unwrap_err(), MergeError::Empty);
        let mut other = shard(2, 2, &["b"]);
        other.run.target = "prosody".into();
        let e = err(vec![shard(1, 2, &["a"]), other]);
        assert!(
            e.starts_with("s2.json: target is `prosody`, but s1.json has `reference`"),
            "{e}"
        );
        let mut other = shard(2, 2, &["b"]);
        other.run.policy = "strict".into();
        assert!(err(vec![shard(1, 2, &["a"]), other]).contains("policy is `strict`"));
        let mut other = shard(2, 2, &["b"]);
        other.run.s2spec_version = "0.2.0".into();
        assert!(err(vec![shard(1, 2, &["a"]), other]).contains("s2spec_version"));
        let mut other = shard(2, 2, &["b"]);
        other.run.faults = vec!["no-sasl".into()];
        assert!(err(vec![shard(1, 2, &["a"]), other]).contains("faults is `no-sasl`"));
        let mut other = shard(2, 2, &["b"]);
        other.run.selection.as_mut().unwrap().filter = vec!["config/".into()];
        assert!(err(vec![shard(1, 2, &["a"]), other]).contains("selection"));
        let e = err(vec![shard(1, 2, &["a"]), shard(1, 2, &["b"])]);
        assert!(e.starts_with("s2.json: shard 1/2 is also s1.json"), "{e}");
        let e = err(vec![shard(1, 3, &["a"]), shard(3, 3, &["b"])]);
        assert!(e.starts_with("shard(s) 2/3 of 3 missing"), "{e}");
        let e = err(vec![shard(1, 2, &["a"]), shard(1, 3, &["b"])]);
        assert!(e.contains("partition is `1/3`"), "{e}");
        let e = err(vec![shard(1, 2, &["a", "x"]), shard(2, 2, &["x", "b"])]);
        assert!(
            e.starts_with("s2.json: 1 case(s) also in s1.json, e.g. x"),
            "{e}"
        );
        let mut whole = shard(1, 2, &["b"]);
        whole.run.selection.as_mut().unwrap().partition = None;
        let e = err(vec![shard(1, 2, &["a"]), whole]);
        assert!(e.contains("s2.json: not a shard"), "{e}");
    }

    #[test]
    fn unpartitioned_disjoint_reports_merge_and_transcripts_take_the_least() {
        let mut a = shard(1, 1, &["a"]);
        let mut b = shard(1, 1, &["b"]);
        for r in [&mut a, &mut b] {
            r.run.selection.as_mut().unwrap().partition = None;
        }
        b.run.transcripts = Some(Transcripts::None);
        let m = merge(&named(vec![a, b])).unwrap();
        assert_eq!(m.summary.total, 2);
        assert_eq!(m.run.transcripts, Some(Transcripts::None));
    }
}
