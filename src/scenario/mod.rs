//! Test cases: the matrix of SPEC §4.5 expanded from `scenarios/matrix.toml`.
//! Scripted scenarios will live here too.

mod case;
mod matrix;

pub use case::*;
pub use matrix::*;
