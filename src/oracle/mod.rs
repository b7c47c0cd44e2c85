//! The oracle: what must happen when a target configuration meets a peer.
//!
//! Pure functions only. `methods` (defined with the partner model, because it
//! is what a configuration means, and re-exported here) reproduces SPEC §4's
//! 18-row matrix; `expect` applies the outcome rule of SPEC §4.3 to
//! one pairing, including certificate and DNS variants and the policy profile of
//! §4.4. Every expectation carries a one-sentence rationale and the references
//! it rests on, so that a failure message can quote them.

mod expect;
mod variant;

pub use crate::partner::{Method, Methods, methods};
pub use expect::*;
pub use variant::*;
