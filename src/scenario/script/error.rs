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
    #[error(transparent)]
    Metadata(#[from] MetadataProblem),
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
    Xml(crate::xml::XmlError),
    #[error(transparent)]
    Requirement(#[from] RequirementError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Any other rule of one action's value (its message says which).
    #[error("{0}")]
    Value(String),
}

/// A rule of the scenario's metadata that the file breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataProblem {
    #[error("id `{0}` is not `<spec>/<section>/<slug>` in lower case (SPEC §4.5)")]
    IdSyntax(String),
    /// `problem` is the partner set's own wording of the DNS-name rule.
    #[error("id `{id}` gives an invalid peer domain `{domain}`: {problem}")]
    IdDomain {
        id: String,
        domain: String,
        problem: String,
    },
    #[error("`stranger = true` means no partner configuration: remove [partner]")]
    StrangerWithPartner,
    #[error("missing [partner] (or `stranger = true` for a domain configured nowhere)")]
    MissingPartner,
    #[error("[partner] `{key}` needs at least one value")]
    NoValues { key: &'static str },
    #[error(
        "[partner] lists no valid configuration (SPEC §3: e.g. SASL needs TLS, and some \
         method must remain)"
    )]
    NoValidConfiguration,
    #[error(
        "connection-limit must be at least 1 (it counts the streams a partner may hold at once)"
    )]
    ConnectionLimitZero,
    #[error("a scenario needs at least one [[step]]")]
    NoSteps,
    #[error(transparent)]
    Requirement(#[from] RequirementError),
}

/// A scenario's or step's provenance (SPEC §4.6) that names no requirement
/// the verdict can rest on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("`refs` must cite at least one requirement")]
    NoRefs,
    #[error(
        "the first ref `{first}` is no RFC or XEP: a rule of SPEC.md needs \
         `source = \"configuration\"` or `\"policy\"` (SPEC §4.6)"
    )]
    FirstRefNotProtocol { first: String },
    #[error(
        "`level = \"{level}\"` is for protocol rules; an unmet {kind} rule always counts \
         (write `level = \"MUST\"`)"
    )]
    LevelNotProtocol {
        level: &'static str,
        kind: crate::requirement::SourceKind,
    },
    #[error(
        "a step with its own `keyword` or `source` needs its own `ref` (the sentence it \
         rests on)"
    )]
    StepNeedsRef,
    #[error("`ref` is empty")]
    EmptyRef,
    #[error("a protocol step cites an RFC or XEP; `{reference}` is neither (SPEC §4.6)")]
    StepRefNotProtocol { reference: String },
    #[error("a protocol step in a non-protocol scenario needs its `keyword`")]
    StepNeedsKeyword,
    #[error("`keyword = \"{keyword}\"` applies to protocol rules, not to a {kind} rule")]
    KeywordNotProtocol {
        keyword: crate::requirement::Keyword,
        kind: crate::requirement::SourceKind,
    },
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
