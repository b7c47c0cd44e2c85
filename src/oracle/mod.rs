//! The oracle: what must happen when a target configuration meets a peer.
//!
//! Pure functions only. `methods` is the rule of SPEC §4 that reproduces the
//! published 18-row matrix; `expect` applies the outcome rule of SPEC §4.3 to
//! one pairing, including certificate and DNS variants and the policy profile of
//! §4.4. Every expectation carries a one-sentence rationale and the references
//! it rests on, so that a failure message can quote them.

mod expect;
mod method;
mod variant;

pub use expect::*;
pub use method::*;
pub use variant::*;
