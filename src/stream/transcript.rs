//! The record of what happened on the wire during one test case.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Direction of an entry, from the point of view of the recording side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    Sent,
    Received,
}

/// What an entry's text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A serialised header, element or `</stream:stream>`.
    Xml,
    /// Bytes sent verbatim (lossily decoded as UTF-8 for display).
    Raw,
    /// A whitespace keep-alive.
    Whitespace,
    /// Not wire data: a TLS handshake, discarded bytes, a closed socket, an error.
    Note,
}

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Time since the transcript started.
    pub at: Duration,
    /// Stream number within the test case.
    pub stream: u32,
    pub dir: Dir,
    /// Whether the stream was encrypted at the time.
    pub tls: bool,
    pub kind: EntryKind,
    pub text: String,
}

/// Entries kept per transcript; beyond this only a truncation note is kept,
/// so a peer flooding keep-alives cannot exhaust memory.
pub const MAX_ENTRIES: usize = 100_000;

/// A shared, cheaply clonable transcript for all streams of one test case.
#[derive(Debug, Clone)]
pub struct Transcript {
    entries: Arc<Mutex<Vec<Entry>>>,
    start: Instant,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new()
    }
}

impl Transcript {
    pub fn new() -> Transcript {
        Transcript {
            entries: Arc::new(Mutex::new(Vec::new())),
            start: Instant::now(),
        }
    }

    /// When the transcript started (entries' `at` is relative to this).
    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn record(&self, stream: u32, dir: Dir, tls: bool, kind: EntryKind, text: String) {
        let at = self.start.elapsed();
        let mut entries = self.lock();
        match entries.len() {
            n if n < MAX_ENTRIES => entries.push(Entry {
                at,
                stream,
                dir,
                tls,
                kind,
                text,
            }),
            n if n == MAX_ENTRIES => entries.push(Entry {
                at,
                stream,
                dir,
                tls,
                kind: EntryKind::Note,
                text: "transcript truncated".into(),
            }),
            _ => {}
        }
    }

    /// A copy of all entries so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    /// A copy of the entries of one stream.
    pub fn stream_entries(&self, stream: u32) -> Vec<Entry> {
        self.lock()
            .iter()
            .filter(|e| e.stream == stream)
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock cannot leave a Vec half-pushed in a
        // way that matters here; keep recording rather than cascade the panic.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
