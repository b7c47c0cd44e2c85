//! The reference federation proxy: a small, real XMPP server-to-server proxy
//! that honours partner configurations (SPEC §4.1, §4.2, §7, §8). It is the
//! embedded default target. It depends on the protocol pieces (`xml`,
//! `stream`, `tls`, `dialback`, `dns`) and the partner model, never on the
//! oracle, the peers or the scenarios: it may not peek at expected answers.

pub mod fault;
pub mod policy;

pub use fault::{Fault, Faults};
