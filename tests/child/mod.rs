//! Running `s2spec` as a child process in tests: a guard that kills it however
//! the test ends, and a bounded wait for its `listening on ADDR` line.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_s2spec");

/// Kills the child however the test ends.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `s2spec ARGS` and waits for its "listening on ADDR" line.
pub fn spawn_listening(args: &[&str]) -> (Guard, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn s2spec");
    let stdout = child.stdout.take().expect("stdout");
    let guard = Guard(child);
    // Read on a thread so a silent child cannot hang the test.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("s2spec printed its address");
        if let Some(rest) = line.strip_prefix("listening on ") {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            return (guard, addr.parse().expect("an address"));
        }
    }
}

/// Runs `s2spec ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run s2spec")
}
