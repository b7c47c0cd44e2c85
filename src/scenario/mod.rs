//! Test cases: the matrix of SPEC §4.5 expanded from `scenarios/matrix.toml`,
//! and the scripted scenarios of `scenarios/<spec>/` (`script`).

mod case;
mod matrix;
pub mod script;

pub use case::*;
pub use matrix::*;

/// Every case of a scenario directory: the matrix of `dir/matrix.toml`, then
/// the scripted scenarios of the files beside it.
pub fn load_all(matrix: &std::path::Path) -> Result<Vec<Case>, ScenarioError> {
    let mut cases = expand(&load_matrix(matrix)?)?;
    let dir = matrix.parent().filter(|d| !d.as_os_str().is_empty());
    cases.extend(load_script_cases(dir.unwrap_or(std::path::Path::new(".")))?);
    Ok(cases)
}

/// Why the cases of a scenario directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error(transparent)]
    Expand(#[from] ExpandError),
    #[error(transparent)]
    Script(#[from] script::LoadError),
}

/// The cases of every scenario file under `dir` (`matrix.toml` excluded).
pub fn load_script_cases(dir: &std::path::Path) -> Result<Vec<Case>, script::LoadError> {
    Ok(script::load_scenarios(dir)?
        .into_iter()
        .map(script_case)
        .collect())
}
