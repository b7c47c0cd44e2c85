//! Partner configuration: the model of SPEC §2, the partner-set file (§2.1) and
//! its validation rules (§3).
//!
//! `model` holds the plain data types everything else uses; `load` turns a TOML
//! file into them while keeping source positions; `validate` is a pure function
//! from a loaded set to every diagnostic it deserves.

mod load;
mod method;
mod model;
mod validate;

pub use load::{LoadError, Loaded, SourceMap, TableSpans, load_file, load_str};
pub use method::*;
pub use model::*;
pub use validate::{
    NegotiationFinding, dns_name_problem, negotiation_findings, negotiation_is_valid, validate,
};
