//! `report.json`: the machine-readable record of a run (schema in
//! `docs/report-schema.md`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Report, SCHEMA};

/// Writes `report` as pretty JSON to `path`, creating its directory.
///
/// The file is written beside its final name and renamed into place, so a
/// reader (or a crash mid-run) never sees half a report.
pub fn write_json(report: &Report, path: &Path) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(report).map_err(io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text)
}

/// Reads a `report.json`, refusing files of another schema.
///
/// Errors name the file: they end up in front of a user who may have passed
/// the wrong path.
pub fn read_json(path: &Path) -> Result<Report, String> {
    let shown = path.display();
    let text = fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    // Look at the schema before the structure, so a report of another
    // version is reported as such rather than as a confusing missing field.
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{shown}: not valid JSON: {e}"))?;
    match value.get("schema") {
        Some(serde_json::Value::String(s)) if s == SCHEMA => {}
        Some(serde_json::Value::String(s)) => {
            return Err(format!(
                "{shown}: report schema is {s:?}, this s2spec reads {SCHEMA:?}"
            ));
        }
        _ => {
            return Err(format!(
                "{shown}: not an s2spec report (no \"schema\" string; expected {SCHEMA:?})"
            ));
        }
    }
    serde_json::from_value(value).map_err(|e| format!("{shown}: malformed {SCHEMA} report: {e}"))
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// (a rename is atomic only within one file system), creating the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )
    })?;
    fs::create_dir_all(&dir)?;

    // Unique per process and call, so concurrent writers never share a
    // temporary file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
    }
    result
}
