//! Input files as text with positions: one offset→line rule for every loader,
//! and reading a file whose invalid UTF-8 is reported at its line.

use std::path::{Path, PathBuf};

/// 1-based line of a byte offset (an offset past the end is on the last line).
pub fn line_of(text: &str, offset: usize) -> usize {
    line_of_bytes(text.as_bytes(), offset)
}

fn line_of_bytes(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    1 + bytes[..end].iter().filter(|b| **b == b'\n').count()
}

/// Why a file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: invalid UTF-8 (byte {column} of the line)", path.display())]
    Utf8 {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

impl ReadError {
    /// The line at fault, when there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ReadError::Io { .. } => None,
            ReadError::Utf8 { line, .. } => Some(*line),
        }
    }
}

/// The whole file as UTF-8 text; the error names the file and, for bad
/// bytes, the line and byte where they start.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line_start = bytes[..bad]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        ReadError::Utf8 {
            path: path.to_path_buf(),
            line: line_of_bytes(bytes, bad),
            column: bad - line_start + 1,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_count_from_one_and_column_one_is_on_its_own_line() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 1), 1);
        // Column 1 of line 2: the offset right after the newline.
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
        assert_eq!(line_of("", 0), 1);
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_line() {
        let dir = std::env::temp_dir().join(format!("s2spec-source-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, b"a = 1\nb = \"x\xffy\"\n").unwrap();
        let err = read_text(&path).unwrap_err();
        assert_eq!(err.line(), Some(2));
        let text = err.to_string();
        assert!(text.contains("bad.toml:2: invalid UTF-8 (byte 7"), "{text}");
        std::fs::write(&path, "ok = \"é\"\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "ok = \"é\"\n");
        let missing = read_text(&dir.join("missing.toml")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read "), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
