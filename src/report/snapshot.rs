//! Transcript snapshots: a case's transcript with everything that changes
//! from run to run normalised away (stream ids, dialback keys, ports,
//! loopback addresses, timings, the interleaving of concurrent streams), so
//! that a behaviour change of the target shows up as a text diff.

use std::collections::HashMap;

use super::CaseResult;
use crate::stream::{Dir, Entry, EntryKind};

/// A file-system-friendly name for a case's snapshot: `/` becomes `__`.
pub fn snapshot_name(id: &str) -> String {
    id.replace('/', "__")
}

/// The normalised text of one case: its verdict and outcomes, then each
/// stream's entries in order (streams in order of first appearance).
pub fn snapshot_text(case: &CaseResult) -> String {
    let mut out = format!("case: {}\nverdict: {}\n", case.id, case.verdict);
    if let Some(e) = &case.expected {
        out.push_str(&format!("expected: {}\n", e.outcome));
    }
    if let Some(o) = &case.observed {
        out.push_str(&format!("observed: {} (tls: {})\n", o.outcome, o.tls));
    }
    let mut names = Placeholders::default();
    let mut order: Vec<u32> = Vec::new();
    for e in &case.transcript {
        if !order.contains(&e.stream) {
            order.push(e.stream);
        }
    }
    for (n, stream) in order.iter().enumerate() {
        out.push_str(&format!("\nstream {}:\n", n + 1));
        let mut last_whitespace = false;
        for e in case.transcript.iter().filter(|e| e.stream == *stream) {
            // A keep-alive run may arrive split into several events.
            let whitespace = e.kind == EntryKind::Whitespace;
            if whitespace && last_whitespace {
                continue;
            }
            last_whitespace = whitespace;
            out.push_str(&line(e, &mut names));
            out.push('\n');
        }
    }
    out
}

fn line(e: &Entry, names: &mut Placeholders) -> String {
    let dir = match e.dir {
        Dir::Sent => "peer ->",
        Dir::Received => "peer <-",
    };
    let tls = if e.tls { "tls" } else { "tcp" };
    let text = match e.kind {
        EntryKind::Whitespace => "(whitespace)".to_string(),
        EntryKind::Note => format!("note: {}", names.normalise(&e.text)),
        EntryKind::Xml | EntryKind::Raw => names.normalise(&e.text),
    };
    format!("  {dir} {tls} {text}")
}

/// Stable placeholders per case: the same stream id or key gets the same
/// name wherever it appears, so the snapshot still shows that a `db:verify`
/// carries the key of the `db:result`.
#[derive(Default)]
struct Placeholders {
    seen: HashMap<String, String>,
    ids: usize,
    keys: usize,
}

impl Placeholders {
    fn normalise(&mut self, text: &str) -> String {
        let text = self.hex_runs(text);
        addresses(&text)
    }

    /// 24 hex digits are stream ids (ours and the reference proxy's), 64 are
    /// XEP-0185 keys; other runs stay.
    fn hex_runs(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut run = String::new();
        for c in text.chars().chain(std::iter::once('\u{0}')) {
            if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
                run.push(c);
                continue;
            }
            if !run.is_empty() {
                out.push_str(&self.placeholder(&run));
                run.clear();
            }
            if c != '\u{0}' {
                out.push(c);
            }
        }
        out
    }

    fn placeholder(&mut self, run: &str) -> String {
        let kind = match run.len() {
            24 => "stream-id",
            64 => "dialback-key",
            _ => return run.to_string(),
        };
        if let Some(name) = self.seen.get(run) {
            return name.clone();
        }
        let n = if kind == "stream-id" {
            self.ids += 1;
            self.ids
        } else {
            self.keys += 1;
            self.keys
        };
        let name = format!("{{{kind}-{n}}}");
        self.seen.insert(run.to_string(), name.clone());
        name
    }
}

/// `127.a.b.c:port` → `{ip}:{port}`; port 5269 and 127.0.0.1 are kept
/// because they are meaningful (standard port, plain loopback).
fn addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("127.") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
            .unwrap_or(tail.len());
        let addr = &tail[..end];
        match addr.split_once(':') {
            Some((ip, port)) if !port.is_empty() => {
                out.push_str(if ip == "127.0.0.1" { ip } else { "{ip}" });
                out.push(':');
                out.push_str(if port == "5269" { port } else { "{port}" });
            }
            _ => out.push_str(addr),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    ipv6_ports(&out)
}

/// `[::1]:port` → `[::1]:{port}` (the `aaaa-only` variant's peers), 5269 kept.
fn ipv6_ports(text: &str) -> String {
    const V6: &str = "[::1]:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(V6) {
        out.push_str(&rest[..at + V6.len()]);
        let tail = &rest[at + V6.len()..];
        let end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let port = &tail[..end];
        out.push_str(if port.is_empty() || port == "5269" {
            port
        } else {
            "{port}"
        });
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keys_and_ports_become_placeholders() {
        let mut p = Placeholders::default();
        let id = "0c8a85562b328519061d2c18";
        let key = "56ca864f29f41ec7d5ad278acb19e0386f0ad7339aa58cb5f6d7ece3b8f36177";
        let a = p.normalise(&format!("<db:verify id='{id}'>{key}</db:verify>"));
        assert_eq!(
            a,
            "<db:verify id='{stream-id-1}'>{dialback-key-1}</db:verify>"
        );
        let b = p.normalise(&format!("verification (stream {id}) via 127.0.0.1:34405"));
        assert_eq!(
            b,
            "verification (stream {stream-id-1}) via 127.0.0.1:{port}"
        );
        assert_eq!(
            p.normalise("127.77.1.9:5269 and 127.77.1.9:80"),
            "{ip}:5269 and {ip}:{port}"
        );
        assert_eq!(
            p.normalise("from [::1]:53144 to [::1]:5269"),
            "from [::1]:{port} to [::1]:5269"
        );
        assert_eq!(p.normalise("tls-dialback cafe"), "tls-dialback cafe");
    }
}
