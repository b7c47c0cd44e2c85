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
    write_atomic(path, &json_bytes(report)?)
}

/// `report` as JSON text: indented down to the level of a transcript's
/// entries, each entry (and anything deeper) on one line. Fully indented, a
/// transcript entry takes a dozen lines; this keeps the files of real
/// servers, whose failing cases keep their transcripts, under 2 MB while
/// every case and every entry still has lines of its own to diff.
pub fn json_bytes(report: &Report) -> io::Result<Vec<u8>> {
    let mut text = Vec::with_capacity(64 * 1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut text, Layered::default());
    serde::Serialize::serialize(report, &mut ser).map_err(io::Error::other)?;
    text.push(b'\n');
    Ok(text)
}

/// Nesting levels that are indented: the report (1), `cases` (2), a case
/// (3) and its lists such as `transcript` (4); their members are compact.
const INDENTED_LEVELS: usize = 4;

/// A `serde_json` formatter: pretty down to [`INDENTED_LEVELS`], compact below.
#[derive(Default)]
struct Layered {
    level: usize,
    has_value: bool,
}

impl Layered {
    fn indented(&self) -> bool {
        self.level <= INDENTED_LEVELS
    }

    fn break_line<W: ?Sized + Write>(w: &mut W, level: usize) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..level {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        if self.indented() && self.has_value {
            Self::break_line(w, self.level.saturating_sub(1))?;
        }
        self.level = self.level.saturating_sub(1);
        w.write_all(bracket)
    }

    fn member<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.indented() {
            Self::break_line(w, self.level)?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Layered {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.member(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.member(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(if self.indented() { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Reads a `report.json`, refusing files of another schema.
///
/// Errors name the file: they end up in front of a user who may have passed
/// the wrong path.
pub fn read_json(path: &Path) -> Result<Report, ReadError> {
    let file = || path.to_path_buf();
    let text = fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: file(),
        source,
    })?;
    // Look at the schema before the structure, so a report of another
    // version is reported as such rather than as a confusing missing field.
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| ReadError::NotJson {
            path: file(),
            source,
        })?;
    match value.get("schema") {
        Some(serde_json::Value::String(s)) if s == SCHEMA => {}
        Some(serde_json::Value::String(s)) => {
            return Err(ReadError::OtherSchema {
                path: file(),
                schema: s.clone(),
            });
        }
        _ => return Err(ReadError::NoSchema { path: file() }),
    }
    serde_json::from_value(value).map_err(|source| ReadError::Malformed {
        path: file(),
        source,
    })
}

/// Why a `report.json` could not be read; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not valid JSON: {source}", path.display())]
    NotJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: report schema is {schema:?}, this s2spec reads {SCHEMA:?}", path.display())]
    OtherSchema { path: PathBuf, schema: String },
    #[error(
        "{}: not an s2spec report (no \"schema\" string; expected {SCHEMA:?})",
        path.display()
    )]
    NoSchema { path: PathBuf },
    #[error("{}: malformed {SCHEMA} report: {source}", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Deep {
        a: Vec<Vec<Vec<Vec<u8>>>>,
        b: Vec<u8>,
    }

    #[test]
    fn layered_json_is_indented_to_level_four_then_compact() {
        let deep = Deep {
            a: vec![vec![vec![vec![1, 2]], vec![]]],
            b: vec![],
        };
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Layered::default());
        serde::Serialize::serialize(&deep, &mut ser).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\n  \"a\": [\n    [\n      [\n        [1,2]\n      ],\n      []\n    ]\n  ],\n  \"b\": []\n}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["a"][0][0][0][1], 2);
    }
}
