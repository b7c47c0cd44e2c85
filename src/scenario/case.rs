//! One test case and its stable identifier (SPEC §4.5).

use serde::Serialize;

use crate::oracle::{Direction, Pairing};
use crate::partner::Negotiation;
use crate::scenario::script::{Script, ScriptRef};

/// What a case exercises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CaseKind {
    /// A target configuration meets a simulated peer.
    Pairing(Pairing),
    /// The target must refuse this (invalid) configuration.
    Config(Negotiation),
    /// A peer whose domain matches no partner configuration: every stream
    /// with it must be refused (SPEC §2).
    Stranger {
        direction: Direction,
        peer: Negotiation,
    },
    /// A scripted scenario (`scenarios/<spec>/…`).
    Script(#[serde(serialize_with = "serialize_script")] ScriptRef),
}

/// `Arc` has no `Serialize` without serde's `rc` feature; the content does.
fn serialize_script<S: serde::Serializer>(s: &ScriptRef, ser: S) -> Result<S::Ok, S::Error> {
    Script::serialize(s, ser)
}

/// The case of a scenario: its id, `script` family, its title.
pub fn script_case(script: Script) -> Case {
    Case {
        id: script.id.clone(),
        family: "script".into(),
        description: format!("[{}] {}", script.level.as_str(), script.title),
        kind: CaseKind::Script(std::sync::Arc::new(script)),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Case {
    /// Stable, hierarchical, filterable.
    pub id: String,
    /// The matrix family (or `config`) it comes from.
    pub family: String,
    /// One line for `s2spec list`.
    pub description: String,
    pub kind: CaseKind,
}

/// The reserved test TLD all case domains live under (RFC 2606 reserves `.test`).
pub const CASE_ZONE: &str = "s2s.test";

/// `matrix/<in|out>/t-<TSD>/p-<TSD>/<cert>/<dns>`.
pub fn pairing_id(p: &Pairing) -> String {
    format!(
        "matrix/{}/t-{}/p-{}/{}/{}",
        p.direction,
        p.target.code(),
        p.peer.code(),
        p.cert,
        p.dns
    )
}

/// `config/<TSD>`.
pub fn config_id(n: Negotiation) -> String {
    format!("config/{}", n.code())
}

/// The peer's own domain for a pairing: unique per case and readable, with
/// at least three labels so that a `wildcard` certificate can cover it.
pub fn peer_domain(p: &Pairing) -> String {
    format!(
        "p-{}.t-{}.{}.{}.{}.{CASE_ZONE}",
        p.peer.code().to_ascii_lowercase(),
        p.target.code().to_ascii_lowercase(),
        match p.direction {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        },
        p.cert,
        p.dns
    )
}

/// `matrix/<in|out>/t-none/p-<TSD>/valid/srv`: the target has no partner
/// configuration for the peer.
pub fn stranger_id(direction: Direction, peer: Negotiation) -> String {
    format!("matrix/{direction}/t-none/p-{}/valid/srv", peer.code())
}

/// The stranger's domain: like a case domain, but configured nowhere.
pub fn stranger_domain(direction: Direction, peer: Negotiation) -> String {
    format!(
        "p-{}.stranger.{direction}.{CASE_ZONE}",
        peer.code().to_ascii_lowercase()
    )
}
