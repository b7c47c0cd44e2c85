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

/// Reads and checks `scenarios/matrix.toml`; errors name the file and line.
pub fn load_matrix(path: &Path) -> Result<MatrixSpec, String> {
    let text = crate::source::read_text(path).map_err(|e| e.to_string())?;
    parse_matrix(&text, &path.display().to_string())
}

pub fn parse_matrix(text: &str, file: &str) -> Result<MatrixSpec, String> {
    let spec: MatrixSpec = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| crate::source::line_of(text, s.start))
            .unwrap_or(1);
        format!("{file}:{line}: {}", e.message())
    })?;
    // Expanding once checks every name and code.
    expand(&spec).map_err(|e| format!("{file}:{}: {e}", line_of_problem(text, &e)))?;
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
pub fn expand(spec: &MatrixSpec) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for family in &spec.families {
        expand_family(family, &mut cases)?;
    }
    let mut seen = std::collections::HashSet::new();
    cases.retain(|c: &Case| seen.insert(c.id.clone()));
    if let Some(stranger) = &spec.stranger {
        for &direction in &stranger.directions {
            for c in &stranger.peers {
                let peer = code(c).map_err(|e| format!("stranger: {e}"))?;
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
            return Err(format!(
                "config rows `{}`: only \"invalid\" is known",
                config.rows
            ));
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

fn expand_family(f: &Family, out: &mut Vec<Case>) -> Result<(), String> {
    let targets = select_targets(&f.targets).map_err(|e| format!("family {}: {e}", f.name))?;
    let certs: Vec<CertVariant> =
        select_variants(&f.certs).map_err(|e| format!("family {}: {e}", f.name))?;
    let dns: Vec<DnsVariant> =
        select_variants(&f.dns).map_err(|e| format!("family {}: {e}", f.name))?;
    for &direction in &f.directions {
        for &target in &targets {
            let peers = peers_for(f, target).map_err(|e| format!("family {}: {e}", f.name))?;
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

fn code(c: &str) -> Result<Negotiation, String> {
    Negotiation::from_code(c).ok_or_else(|| format!("`{c}` is not a <T><S><D> code such as RO1"))
}

fn select_targets(s: &Selection) -> Result<Vec<Negotiation>, String> {
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
            other => Err(format!("unknown target selection `{other}`")),
        },
        Selection::List(codes) => codes.iter().map(|c| code(c)).collect(),
    }
}

fn peers_for(f: &Family, target: Negotiation) -> Result<Vec<Negotiation>, String> {
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
        _ => Err(
            "give either `peers` (\"all\" or a list) or both `peer-clear` and `peer-tls-required`"
                .into(),
        ),
    }
}

fn select_variants<V>(s: &Selection) -> Result<Vec<V>, String>
where
    V: Copy + std::str::FromStr<Err = String> + AllVariants,
{
    match s {
        Selection::Named(n) if n == "all" => Ok(V::all().to_vec()),
        Selection::Named(n) => Err(format!("unknown selection `{n}` (a list or \"all\")")),
        Selection::List(names) => names.iter().map(|n| n.parse::<V>()).collect(),
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
