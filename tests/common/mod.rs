//! Helpers shared by the test files that start real servers
//! (`tests/probe.rs`, `tests/real_targets.rs`, `tests/profiles.rs`,
//! `tests/cli_robustness.rs`).

#![allow(dead_code)] // each test file uses a different part of this module

/// One server's tests at a time within a test binary: instances of one
/// server must not share ports, logs or (ejabberd) the mount namespace
/// set-up, and the leftover check must see only the instances of the test
/// that just finished.
pub fn one_at_a_time(server: &str) -> &'static tokio::sync::Mutex<()> {
    static PROSODY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    static EJABBERD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    match server {
        "prosody" => &PROSODY,
        _ => &EJABBERD,
    }
}

/// Processes whose command line mentions this test process's managed
/// instance directories (`s2spec-<name>-<pid>-...`): none may outlive a test.
pub fn leftovers(name: &str) -> Vec<String> {
    let marker = format!("s2spec-{name}-{}-", std::process::id());
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                if cmd.contains(&marker) {
                    found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
                }
            }
        }
    }
    found
}

/// The managed instance directories in the temporary directory whose name
/// starts with `prefix` (`s2spec-<name>-<pid>-`).
pub fn instance_dirs_with(prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}
