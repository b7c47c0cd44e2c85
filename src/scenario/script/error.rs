//! Why a scenario file does not load. Every error names the file and, where
//! the fault has a place, the line; step errors also name the step and the
//! key at fault.

/// A scenario file (or directory) that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}:{line}: {problem}")]
    At {
        file: String,
        line: usize,
        problem: Problem,
    },
    #[error(transparent)]
    Read(#[from] crate::source::ReadError),
    #[error("cannot read {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
}

impl LoadError {
    /// The line at fault, where there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            LoadError::At { line, .. } => Some(*line),
            LoadError::Read(e) => e.line(),
            LoadError::Dir { .. } => None,
        }
    }
}

// Callers outside `scenario` (the matrix loader, `cli`) still report with
// strings; this keeps `?` working there until they are typed too.
impl From<LoadError> for String {
    fn from(e: LoadError) -> String {
        e.to_string()
    }
}

/// What is wrong at a place of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// TOML syntax or a key serde does not know (unknown actions included).
    #[error("{0}")]
    Toml(String),
    #[error("step {step}: {problem}")]
    Step { step: usize, problem: StepProblem },
    #[error("id `{id}` is already used by {other}")]
    DuplicateId { id: String, other: String },
    /// A rule of the scenario's metadata (`id`, `refs`, `[partner]`, `[peer]`).
    #[error("{0}")]
    Metadata(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// What is wrong with one `[[step]]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepProblem {
    #[error("no action (e.g. `send`, `expect`, `connect`)")]
    NoAction,
    #[error("one action per step, found {}", .0.join(", "))]
    ManyActions(Vec<&'static str>),
    #[error("`{modifier}` does not apply to `{action}`")]
    Modifier {
        modifier: &'static str,
        action: &'static str,
    },
    #[error("`{key}` does not apply to `{action}`: it checks nothing, so it cannot be unmet")]
    Provenance {
        key: &'static str,
        action: &'static str,
    },
    #[error("`{0} = false` means nothing; remove the step")]
    FalseFlag(&'static str),
    #[error("needs a connection: `connect` or `authenticate` first")]
    NeedsConnection,
    #[error("`{key}` must be between 0 and 600 seconds")]
    Seconds { key: &'static str },
    #[error("XML does not parse: {0}")]
    Xml(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Any other rule of one action's value (its message says which).
    #[error("{0}")]
    Value(String),
}

/// A placeholder that is unknown, unclosed or out of place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed placeholder in `{0}`")]
    Unclosed(String),
    #[error("unknown placeholder `{{{0}}}`")]
    Unknown(String),
    #[error("`{placeholder}` cannot be used in {place}")]
    Misplaced { placeholder: String, place: String },
}
