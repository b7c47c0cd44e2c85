//! Test cases: the matrix of SPEC §4.5 expanded from `scenarios/matrix.toml`,
//! and the scripted scenarios of `scenarios/<spec>/` (`script`).

mod case;
mod matrix;
pub mod script;

pub use case::*;
pub use matrix::*;

/// The cases of every scenario file under `dir` (`matrix.toml` excluded).
pub fn load_script_cases(dir: &std::path::Path) -> Result<Vec<Case>, String> {
    Ok(script::load_scenarios(dir)?
        .into_iter()
        .map(script_case)
        .collect())
}
