//! s2spec — a conformance harness for XMPP server-to-server federation.
//!
//! The library is split into rooms with one job each (see ARCHITECTURE.md):
//! the pure models (`partner`, `oracle`), the protocol pieces shared by the
//! simulated peers and the reference proxy (`xml`, `stream`, `tls`, `dialback`),
//! the test infrastructure (`pki`, `dns`) and the command line (`cli`).
#![forbid(unsafe_code)]

#[macro_use]
mod kebab;
pub use kebab::UnknownSpelling;

pub mod c2s;
pub mod cli;
pub mod clock;
pub mod dialback;
pub mod dns;
pub mod features;
pub mod gate;
pub mod lync;
pub mod oracle;
pub mod partner;
pub mod peer;
pub mod pki;
pub mod probe;
pub mod random;
pub mod refproxy;
pub mod report;
pub mod requirement;
pub mod run;
pub mod sasl;
pub mod scenario;
pub mod source;
pub mod stanza;
pub mod starttls;
pub mod stream;
pub mod target;
pub mod tls;
pub mod xml;
