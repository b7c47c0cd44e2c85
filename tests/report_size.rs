//! Committed reports stay small enough to live in the repository: every
//! `reports/<target>/report.json` under 2 MB with the default
//! `--transcripts failing`, and `report.html` self-contained.

use std::path::{Path, PathBuf};

use s2spec::report::{Report, Transcripts, html_string, json_bytes};

const LIMIT: usize = 2 * 1024 * 1024;

fn committed() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("report.json").is_file());
    dirs.sort();
    dirs
}

/// The committed report, whatever its schema version: fields added since
/// are optional, and these files are regenerated only at release time.
fn read_committed(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn self_contained(html: &str) -> bool {
    !html.contains("<link") && !html.contains(" src=\"http") && !html.contains("@import")
}

#[test]
fn committed_reports_rendered_with_the_default_fit_in_2_mb() {
    let dirs = committed();
    assert!(!dirs.is_empty(), "no committed reports under reports/");
    for dir in dirs {
        let path = dir.join("report.json");
        let mut report = read_committed(&path);
        // The file on disk may predate --transcripts: render it the way
        // `s2spec run` now writes it.
        report.keep_transcripts(Transcripts::Failing);
        let json = json_bytes(&report).unwrap();
        assert!(
            json.len() < LIMIT,
            "{}: {} bytes with --transcripts failing",
            path.display(),
            json.len()
        );
        let html = html_string(&report);
        assert!(self_contained(&html), "{}", dir.display());
    }
}

#[test]
fn committed_reports_written_with_the_flag_are_under_2_mb() {
    for dir in committed() {
        let path = dir.join("report.json");
        let report = read_committed(&path);
        // Files written before --transcripts existed are checked above.
        if report.run.transcripts.is_none() {
            continue;
        }
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(size < LIMIT, "{}: {size} bytes", path.display());
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(self_contained(&html), "{}", dir.display());
    }
}
