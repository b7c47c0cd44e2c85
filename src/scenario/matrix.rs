//! `scenarios/matrix.toml`: the matrix as data, expanded into cases.

use std::path::Path;

use serde::Deserialize;

use super::case::{Case, CaseKind, config_id, pairing_id, stranger_id};
use crate::oracle::{CertVariant, Direction, DnsVariant, Pairing};
use crate::partner::{Method, Negotiation, Setting, methods, negotiation_is_valid};

/// The parsed matrix file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    #[serde(rename = "family", default)]
    pub families: Vec<Family>,
    pub config: Option<ConfigFamily>,
    pub stranger: Option<StrangerFamily>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrangerFamily {
    pub description: String,
    pub peers: Vec<String>,
    pub directions: Vec<Direction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Family {
    pub name: String,
    pub description: String,
    pub targets: Selection,
    pub peers: Option<Selection>,
    pub peer_clear: Option<String>,
    pub peer_tls_required: Option<String>,
    pub certs: Selection,
    pub dns: Selection,
    pub directions: Vec<Direction>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFamily {
    pub description: String,
    pub rows: String,
}

/// A named selection (`"valid"`, `"all"`, ...) or an explicit list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Selection {
    Named(String),
    List(Vec<String>),
}

/// Why a matrix file is unusable; every variant names the file and line.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error(transparent)]
    Read(#[from] crate::source::ReadError),
    #[error("{file}:{line}: {}", source.message())]
    Toml {
        file: String,
        line: usize,
        // Boxed: the TOML error is large, and this one rides up through every loader.
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{file}:{line}: {source}")]
    Expand {
        file: String,
        line: usize,
        #[source]
        source: Box<ExpandError>,
    },
}

/// A matrix that parses but names something unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("family {family}: {source}")]
    Family {
        family: String,
        #[source]
        source: SelectionError,
    },
    #[error("stranger: {0}")]
    Stranger(#[source] SelectionError),
    #[error("config rows `{0}`: only \"invalid\" is known")]
    ConfigRows(String),
}

/// A selection of targets, peers or variants that names nothing known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("`{0}` is not a <T><S><D> code such as RO1")]
    Code(String),
    #[error("unknown target selection `{0}`")]
    Targets(String),
    #[error("unknown selection `{0}` (a list or \"all\")")]
    Named(String),
    #[error(transparent)]
    Variant(#[from] crate::kebab::UnknownSpelling),
    #[error(transparent)]
    Cert(#[from] crate::pki::UnknownCertVariant),
    #[error("give either `peers` (\"all\" or a list) or both `peer-clear` and `peer-tls-required`")]
    Peers,
}

/// Reads and checks `scenarios/matrix.toml`; errors name the file and line.
pub fn load_matrix(path: &Path) -> Result<MatrixSpec, MatrixError> {
    let text = crate::source::read_text(path)?;
    parse_matrix(&text, &path.display().to_string())
}

pub fn parse_matrix(text: &str, file: &str) -> Result<MatrixSpec, MatrixError> {
    let spec: MatrixSpec = toml::from_str(text).map_err(|source| MatrixError::Toml {
        file: file.to_owned(),
        line: source
            .span()
            .map(|s| crate::source::line_of(text, s.start))
            .unwrap_or(1),
        source: Box::new(source),
    })?;
    // Expanding once checks every name and code.
    expand(&spec).map_err(|source| MatrixError::Expand {
        file: file.to_owned(),
        line: line_of_problem(text, &source.to_string()),
        source: Box::new(source),
    })?;
    Ok(spec)
}

/// The line an expansion error is about. The spec is read without spans, so
/// this finds the table the message names (`family NAME`, `stranger`,
/// `config`) and, inside it, the first `"value"` the message quotes.
fn line_of_problem(text: &str, message: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let table_start = if let Some(rest) = message.strip_prefix("family ") {
        let name = rest.split(':').next().unwrap_or_default();
        lines.iter().position(|l| {
            l.split_once('=').is_some_and(|(k, v)| {
                k.trim() == "name" && v.trim().trim_matches(|c| c == '"' || c == '\'') == name
            })
        })
    } else if message.starts_with("stranger") {
        lines.iter().position(|l| l.trim() == "[stranger]")
    } else if message.starts_with("config") {
        lines.iter().position(|l| l.trim() == "[config]")
    } else {
        None
    };
    let start = table_start.unwrap_or(0);
    // The first `name` or "name" of the message.
    let quoted = message
        .find(['`', '"'])
        .and_then(|i| {
            let rest = &message[i + 1..];
            rest.find(&message[i..=i]).map(|end| &rest[..end])
        })
        .filter(|q| !q.is_empty());
    let value_line = quoted.and_then(|q| {
        let (dq, sq) = (format!("\"{q}\""), format!("'{q}'"));
        lines[start..]
            .iter()
            .position(|l| l.contains(&dq) || l.contains(&sq))
            .map(|i| start + i)
    });
    value_line.or(table_start).map_or(1, |i| i + 1)
}

/// Every case of the matrix, in file order. Families overlap (the plain
/// family already holds `valid`/`srv` pairings the certificate and DNS
/// families would repeat); a case belongs to the first family that names it.
pub fn expand(spec: &MatrixSpec) -> Result<Vec<Case>, ExpandError> {
    let mut cases = Vec::new();
    for family in &spec.families {
        expand_family(family, &mut cases)?;
    }
    let mut seen = std::collections::HashSet::new();
    cases.retain(|c: &Case| seen.insert(c.id.clone()));
    if let Some(stranger) = &spec.stranger {
        for &direction in &stranger.directions {
            for c in &stranger.peers {
                let peer = code(c).map_err(ExpandError::Stranger)?;
                cases.push(Case {
                    id: stranger_id(direction, peer),
                    family: "stranger".into(),
                    description: format!(
                        "a peer ({}) whose domain matches no partner configuration, {}: refused",
                        peer.code(),
                        match direction {
                            Direction::Inbound => "connecting to the target",
                            Direction::Outbound => "addressed by a local user",
                        }
                    ),
                    kind: CaseKind::Stranger { direction, peer },
                });
            }
        }
    }
    if let Some(config) = &spec.config {
        if config.rows != "invalid" {
            return Err(ExpandError::ConfigRows(config.rows.clone()));
        }
        for n in Negotiation::all().filter(|n| !negotiation_is_valid(*n)) {
            cases.push(Case {
                id: config_id(n),
                family: "config".into(),
                description: format!(
                    "the target must refuse tls = {}, sasl = {}, dialback = {}",
                    n.tls, n.sasl, n.dialback
                ),
                kind: CaseKind::Config(n),
            });
        }
    }
    Ok(cases)
}

fn expand_family(f: &Family, out: &mut Vec<Case>) -> Result<(), ExpandError> {
    let in_family = |source| ExpandError::Family {
        family: f.name.clone(),
        source,
    };
    let targets = select_targets(&f.targets).map_err(in_family)?;
    let certs: Vec<CertVariant> = select_variants(&f.certs).map_err(in_family)?;
    let dns: Vec<DnsVariant> = select_variants(&f.dns).map_err(in_family)?;
    for &direction in &f.directions {
        for &target in &targets {
            let peers = peers_for(f, target).map_err(in_family)?;
            for &peer in &peers {
                for &cert in &certs {
                    for &dns in dns.iter().filter(|d| d.applies_to(direction)) {
                        let pairing = Pairing {
                            target,
                            peer,
                            direction,
                            cert,
                            dns,
                        };
                        out.push(Case {
                            id: pairing_id(&pairing),
                            family: f.name.clone(),
                            description: describe(&pairing),
                            kind: CaseKind::Pairing(pairing),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

fn describe(p: &Pairing) -> String {
    let who = match p.direction {
        Direction::Inbound => "peer connects to target",
        Direction::Outbound => "target connects to peer",
    };
    format!(
        "{who}; target tls={} sasl={} dialback={}; peer tls={} sasl={} dialback={}; cert {}; dns {}",
        p.target.tls,
        p.target.sasl,
        p.target.dialback,
        p.peer.tls,
        p.peer.sasl,
        p.peer.dialback,
        p.cert,
        p.dns
    )
}

fn code(c: &str) -> Result<Negotiation, SelectionError> {
    Negotiation::from_code(c).ok_or_else(|| SelectionError::Code(c.to_owned()))
}

fn select_targets(s: &Selection) -> Result<Vec<Negotiation>, SelectionError> {
    let valid = || Negotiation::all().filter(|n| negotiation_is_valid(*n));
    match s {
        Selection::Named(name) => match name.as_str() {
            "valid" => Ok(valid().collect()),
            "with-tls" => Ok(valid().filter(|n| n.tls != Setting::NotSupported).collect()),
            "admitting-dialback" => Ok(valid()
                .filter(|n| {
                    let m = methods(*n);
                    m.contains(Method::TlsDialback) || m.contains(Method::TcpDialback)
                })
                .collect()),
            "all" => Ok(Negotiation::all().collect()),
            other => Err(SelectionError::Targets(other.to_owned())),
        },
        Selection::List(codes) => codes.iter().map(|c| code(c)).collect(),
    }
}

fn peers_for(f: &Family, target: Negotiation) -> Result<Vec<Negotiation>, SelectionError> {
    match (&f.peers, &f.peer_clear, &f.peer_tls_required) {
        (Some(Selection::Named(n)), None, None) if n == "all" => Ok(Negotiation::all().collect()),
        (Some(Selection::List(codes)), None, None) => codes.iter().map(|c| code(c)).collect(),
        (None, Some(clear), Some(tls)) => {
            let pick = if target.tls == Setting::Required {
                tls
            } else {
                clear
            };
            Ok(vec![code(pick)?])
        }
        _ => Err(SelectionError::Peers),
    }
}

fn select_variants<V>(s: &Selection) -> Result<Vec<V>, SelectionError>
where
    V: Copy + std::str::FromStr + AllVariants,
    SelectionError: From<V::Err>,
{
    match s {
        Selection::Named(n) if n == "all" => Ok(V::all().to_vec()),
        Selection::Named(n) => Err(SelectionError::Named(n.clone())),
        Selection::List(names) => names
            .iter()
            .map(|n| n.parse::<V>().map_err(SelectionError::from))
            .collect(),
    }
}

/// The variants a selection of "all" stands for.
trait AllVariants: Sized + 'static {
    fn all() -> &'static [Self];
}

impl AllVariants for CertVariant {
    fn all() -> &'static [Self] {
        &CertVariant::ALL
    }
}

impl AllVariants for DnsVariant {
    fn all() -> &'static [Self] {
        DnsVariant::ALL
    }
}
