//! The human-readable report: `report.md` and `report.html`.
//!
//! Both renderings share one layout, computed here from the case ids alone:
//! the compatibility grid per direction (`valid`/`srv` cases), the
//! certificate and DNS tables, strangers, configuration cases, scripted
//! scenarios grouped by specification, and whatever is left over. Every case
//! lands in exactly one place, so nothing a run produced is hidden.
//!
//! Everything in a report may come from a hostile peer (transcripts, facts,
//! even ids of a hand-edited file), so the renderers escape every string and
//! make control and bidirectional-override characters visible.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::{CaseOutcome, CaseResult, Report, Verdict};
use crate::oracle::{CertVariant, Direction, DnsVariant, Outcome};
use crate::partner::{Method, Negotiation, methods};

mod html;
mod markdown;

pub use html::{html_string, write_html};
pub use markdown::{markdown_string, write_markdown};

/// The anchor (`id`) of a case in `report.html` and `report.md`: `case-`
/// followed by the id with every character outside `[A-Za-z0-9./-]` written
/// as `_XX` (UTF-8 bytes in hex). The mapping is injective (`_` only ever
/// starts an escape), keeps readable ids readable, and yields only characters
/// that are valid in an HTML id and a URL fragment without further encoding.
pub fn case_anchor(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 5);
    out.push_str("case-");
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// The short form of an outcome used in grid cells.
pub(crate) fn short_outcome(outcome: &CaseOutcome) -> Cow<'static, str> {
    match outcome {
        CaseOutcome::Stream(Outcome::Authenticated(Method::SaslOverTls)) => "SASL".into(),
        CaseOutcome::Stream(Outcome::Authenticated(Method::TlsDialback)) => "TLS-DB".into(),
        CaseOutcome::Stream(Outcome::Authenticated(Method::TcpDialback)) => "TCP-DB".into(),
        CaseOutcome::Stream(Outcome::Refused) => "—".into(),
        CaseOutcome::Configuration { refused: true } => "refused".into(),
        // A long list of unmet steps: keep a cell from growing without bound.
        other => {
            let text = other.to_string();
            if text.chars().count() > 16 {
                let cut: String = text.chars().take(15).collect();
                format!("{cut}…").into()
            } else {
                text.into()
            }
        }
    }
}

/// What a cell shows for a case: its observed outcome, or why there is none.
pub(crate) fn cell_text(case: &CaseResult) -> Cow<'_, str> {
    match (&case.observed, case.verdict) {
        (Some(o), _) => short_outcome(&o.outcome),
        (None, Verdict::NotApplicable) => "n/a".into(),
        (None, Verdict::Error) => "error".into(),
        (None, _) => "?".into(),
    }
}

/// The expected outcome in short form when it differs from the observed one
/// (shown beside the observation in a failing cell).
pub(crate) fn cell_expected(case: &CaseResult) -> Option<Cow<'_, str>> {
    let e = case.expected.as_ref()?;
    match &case.observed {
        Some(o) if o.outcome == e.outcome => None,
        _ => Some(short_outcome(&e.outcome)),
    }
}

/// `s` with control characters, non-characters and bidirectional controls
/// replaced by a visible `\u{…}`: they would otherwise make the document
/// invalid (HTML5 and XML forbid most controls) or reorder what a reader
/// sees. Tabs are kept; line breaks only when `keep_newlines`.
pub(crate) fn visible(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\t' && !(keep_newlines && c == '\n'))
            || matches!(c,
                '\u{200e}' | '\u{200f}' | '\u{061c}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{fdd0}'..='\u{fdef}')
            || (u32::from(c) & 0xfffe) == 0xfffe
    };
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A settings code spelled out, with the methods it admits (SPEC §4).
pub(crate) fn negotiation_title(n: Negotiation) -> String {
    format!(
        "tls={} sasl={} dialback={}; admits: {}",
        n.tls,
        n.sasl,
        n.dialback,
        methods(n)
    )
}

/// Human words for a direction.
pub(crate) fn direction_title(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "Inbound: the peer initiates, the target receives",
        Direction::Outbound => "Outbound: the target initiates toward the peer",
    }
}

/// The parts of a matrix case id (SPEC §4.5).
#[derive(Debug, Clone, Copy)]
struct MatrixId {
    dir: Direction,
    /// `None` for a stranger (`t-none`): a peer with no partner entry.
    target: Option<Negotiation>,
    peer: Negotiation,
    cert: CertVariant,
    dns: DnsVariant,
}

fn parse_matrix(id: &str) -> Option<MatrixId> {
    let parts: Vec<&str> = id.split('/').collect();
    let [m, dir, t, p, cert, dns] = parts.as_slice() else {
        return None;
    };
    if *m != "matrix" {
        return None;
    }
    let dir = Direction::ALL
        .iter()
        .copied()
        .find(|d| d.as_str() == *dir)?;
    let target = match t.strip_prefix("t-")? {
        "none" => None,
        code => Some(Negotiation::from_code(code)?),
    };
    let peer = Negotiation::from_code(p.strip_prefix("p-")?)?;
    let cert = CertVariant::ALL
        .iter()
        .copied()
        .find(|c| c.as_str() == *cert)?;
    let dns = DnsVariant::ALL
        .iter()
        .copied()
        .find(|d| d.as_str() == *dns)?;
    Some(MatrixId {
        dir,
        target,
        peer,
        cert,
        dns,
    })
}

/// Position of a configuration in SPEC §4's table (0 = row 1).
pub(crate) fn table_row(n: Negotiation) -> usize {
    Negotiation::all()
        .position(|m| m == n)
        .unwrap_or(usize::MAX)
}

/// The 18 peer configurations, the columns of a grid.
pub(crate) fn all_negotiations() -> Vec<Negotiation> {
    Negotiation::all().collect()
}

/// The compatibility grid of one direction: rows are the target
/// configurations present, columns the 18 peers; cells index `Report::cases`.
pub(crate) struct Grid {
    pub dir: Direction,
    pub rows: Vec<(Negotiation, Vec<Option<usize>>)>,
}

/// Certificate or DNS variants of one direction. Each row is one
/// (target, peer) pair; the first column is the baseline (`valid` / `srv`,
/// i.e. the grid's case for that pair) so a variant can be compared with it.
pub(crate) struct VariantTable {
    pub dir: Direction,
    pub columns: Vec<&'static str>,
    pub rows: Vec<VariantRow>,
}

pub(crate) struct VariantRow {
    pub target: Negotiation,
    pub peer: Negotiation,
    pub cells: Vec<Option<usize>>,
}

/// Where every case of a report is shown.
pub(crate) struct Layout {
    pub grids: Vec<Grid>,
    pub certs: Vec<VariantTable>,
    pub dns: Vec<VariantTable>,
    pub strangers: Vec<usize>,
    pub config: Vec<usize>,
    /// Matrix cases that fit no table: an unknown combination of variants,
    /// an unparseable id, or a duplicate id.
    pub other_matrix: Vec<usize>,
    /// Scripted scenarios grouped by the first segment of their id.
    pub scenarios: Vec<(String, Vec<usize>)>,
    /// One unique anchor per case, by index.
    pub anchors: Vec<String>,
}

impl Layout {
    pub fn of(report: &Report) -> Layout {
        let cases = &report.cases;
        let anchors = unique_anchors(cases);

        // Matrix cases by their parsed id; the first of duplicate ids wins.
        let mut parsed: Vec<(usize, MatrixId)> = Vec::new();
        let mut other_matrix = Vec::new();
        let mut strangers = Vec::new();
        let mut config = Vec::new();
        let mut scenarios: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in cases.iter().enumerate() {
            let first = c.id.split('/').next().unwrap_or("");
            if first == "matrix" {
                match parse_matrix(&c.id) {
                    Some(m) if m.target.is_none() => strangers.push(i),
                    Some(m) => parsed.push((i, m)),
                    None => other_matrix.push(i),
                }
            } else if first == "config" {
                config.push(i);
            } else {
                scenarios.entry(first.to_string()).or_default().push(i);
            }
        }

        // (dir, target, peer, cert, dns) → case, keeping the first.
        type Key = (Direction, usize, usize, CertVariant, DnsVariant);
        let mut by_key: HashMap<Key, usize> = HashMap::new();
        for &(i, m) in &parsed {
            let Some(t) = m.target else { continue };
            let key = (m.dir, table_row(t), table_row(m.peer), m.cert, m.dns);
            if let std::collections::hash_map::Entry::Vacant(e) = by_key.entry(key) {
                e.insert(i);
            } else {
                other_matrix.push(i);
            }
        }

        let peers = all_negotiations();
        let mut grids = Vec::new();
        let mut certs = Vec::new();
        let mut dns = Vec::new();
        let mut placed = vec![false; cases.len()];
        for &dir in Direction::ALL {
            // The grid: one row per target with any valid/srv case.
            let mut targets: Vec<Negotiation> = Vec::new();
            for &(i, m) in &parsed {
                if let Some(t) = m.target
                    && m.dir == dir
                    && m.cert == CertVariant::Valid
                    && m.dns == DnsVariant::Srv
                    && by_key.get(&(dir, table_row(t), table_row(m.peer), m.cert, m.dns))
                        == Some(&i)
                    && !targets.contains(&t)
                {
                    targets.push(t);
                }
            }
            targets.sort_by_key(|t| table_row(*t));
            let rows: Vec<(Negotiation, Vec<Option<usize>>)> = targets
                .iter()
                .map(|&t| {
                    let cells = peers
                        .iter()
                        .map(|&p| {
                            let key = (
                                dir,
                                table_row(t),
                                table_row(p),
                                CertVariant::Valid,
                                DnsVariant::Srv,
                            );
                            by_key.get(&key).copied()
                        })
                        .collect();
                    (t, cells)
                })
                .collect();
            for (_, cells) in &rows {
                for i in cells.iter().flatten() {
                    placed[*i] = true;
                }
            }
            if !rows.is_empty() {
                grids.push(Grid { dir, rows });
            }

            let cert_table = variant_table(
                dir,
                &parsed,
                &by_key,
                |m| (m.dns == DnsVariant::Srv && m.cert != CertVariant::Valid).then_some(m.cert),
                CertVariant::ALL.as_slice(),
                CertVariant::Valid,
                |c| (c, DnsVariant::Srv),
                CertVariant::as_str,
            );
            let dns_table = variant_table(
                dir,
                &parsed,
                &by_key,
                |m| (m.cert == CertVariant::Valid && m.dns != DnsVariant::Srv).then_some(m.dns),
                DnsVariant::ALL,
                DnsVariant::Srv,
                |d| (CertVariant::Valid, d),
                DnsVariant::as_str,
            );
            for table in [&cert_table, &dns_table].into_iter().flatten() {
                for row in &table.rows {
                    // The baseline column repeats a grid case; only the
                    // variant columns place cases.
                    for i in row.cells.iter().skip(1).flatten() {
                        placed[*i] = true;
                    }
                }
            }
            certs.extend(cert_table);
            dns.extend(dns_table);
        }
        // A parsed matrix case in none of the tables (e.g. a certificate
        // and a DNS variant at once) still gets shown.
        for &(i, _) in &parsed {
            if !placed[i] && !other_matrix.contains(&i) {
                other_matrix.push(i);
            }
        }
        other_matrix.sort_unstable();

        Layout {
            grids,
            certs,
            dns,
            strangers,
            config,
            other_matrix,
            scenarios: scenarios.into_iter().collect(),
            anchors,
        }
    }
}

/// Builds the certificate or DNS table of one direction; `variant_of` picks
/// the cases that belong to it, `ids` maps a variant back to the id parts.
#[allow(clippy::too_many_arguments)]
fn variant_table<V: Copy + PartialEq>(
    dir: Direction,
    parsed: &[(usize, MatrixId)],
    by_key: &HashMap<(Direction, usize, usize, CertVariant, DnsVariant), usize>,
    variant_of: impl Fn(&MatrixId) -> Option<V>,
    all: &[V],
    baseline: V,
    ids: impl Fn(V) -> (CertVariant, DnsVariant),
    name: fn(V) -> &'static str,
) -> Option<VariantTable> {
    let mut pairs: Vec<(Negotiation, Negotiation)> = Vec::new();
    let mut present: Vec<V> = Vec::new();
    for (_, m) in parsed {
        let (Some(t), Some(v)) = (m.target, variant_of(m)) else {
            continue;
        };
        if m.dir != dir {
            continue;
        }
        if !pairs.contains(&(t, m.peer)) {
            pairs.push((t, m.peer));
        }
        if !present.contains(&v) {
            present.push(v);
        }
    }
    if pairs.is_empty() {
        return None;
    }
    pairs.sort_by_key(|(t, p)| (table_row(*t), table_row(*p)));
    let columns: Vec<V> = std::iter::once(baseline)
        .chain(
            all.iter()
                .copied()
                .filter(|v| *v != baseline && present.contains(v)),
        )
        .collect();
    let rows = pairs
        .into_iter()
        .map(|(target, peer)| VariantRow {
            target,
            peer,
            cells: columns
                .iter()
                .map(|&v| {
                    let (c, d) = ids(v);
                    by_key
                        .get(&(dir, table_row(target), table_row(peer), c, d))
                        .copied()
                })
                .collect(),
        })
        .collect();
    Some(VariantTable {
        dir,
        columns: columns.into_iter().map(name).collect(),
        rows,
    })
}

/// [`case_anchor`] for every case, with `~2`, `~3`, … appended to repeated
/// ids (`~` never appears in an anchor otherwise), so ids stay unique even in
/// a report with duplicate case ids.
fn unique_anchors(cases: &[CaseResult]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    cases
        .iter()
        .map(|c| {
            let base = case_anchor(&c.id);
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { base } else { format!("{base}~{n}") }
        })
        .collect()
}

/// Verdicts in the order the report lists non-passing cases: the worst first.
pub(crate) const PROBLEM_ORDER: [Verdict; 4] = [
    Verdict::Fail,
    Verdict::Error,
    Verdict::NonStrict,
    Verdict::NotApplicable,
];

/// The non-passing cases, grouped by verdict in [`PROBLEM_ORDER`] (empty
/// groups left out), as indexes into `report.cases`.
pub(crate) fn problem_groups(report: &Report) -> Vec<(Verdict, Vec<usize>)> {
    PROBLEM_ORDER
        .into_iter()
        .map(|v| {
            let idx = (0..report.cases.len())
                .filter(|&i| report.cases[i].verdict == v)
                .collect::<Vec<_>>();
            (v, idx)
        })
        .filter(|(_, idx)| !idx.is_empty())
        .collect()
}

/// `1 case`, `2 cases`.
/// The run header's rows, shared by both renderings.
pub(crate) fn run_fields(report: &Report) -> Vec<(&'static str, String)> {
    let run = &report.run;
    let faults = if run.faults.is_empty() {
        "none".to_string()
    } else {
        run.faults.join(", ")
    };
    let status = run
        .interrupted
        .then(|| ("status", super::INTERRUPTED_NOTE.to_string()));
    status
        .into_iter()
        .chain([
            ("target", run.target.clone()),
            ("policy", run.policy.clone()),
            ("faults", faults),
            ("s2spec", run.s2spec_version.clone()),
            ("started", run.started.clone()),
            ("finished", run.finished.clone()),
            (
                "duration",
                format!("{:.1} s", run.duration_ms as f64 / 1000.0),
            ),
            ("schema", report.schema.clone()),
        ])
        .collect()
}

pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "TLS" / "no TLS".
pub(crate) fn tls_word(tls: bool) -> &'static str {
    if tls { "TLS" } else { "no TLS" }
}

/// The target and peer settings of a matrix case, if its id is one.
pub(crate) fn matrix_codes(id: &str) -> Option<(String, String)> {
    let m = parse_matrix(id)?;
    let t = m.target.map_or_else(|| "none".to_string(), |t| t.code());
    Some((t, m.peer.code()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_injective_and_safe() {
        assert_eq!(
            case_anchor("matrix/in/t-RO1/p-ON1/valid/srv"),
            "case-matrix/in/t-RO1/p-ON1/valid/srv"
        );
        assert_eq!(case_anchor("a b"), "case-a_20b");
        assert_ne!(case_anchor("a_20b"), case_anchor("a b"));
        assert_eq!(case_anchor("\"<>"), "case-_22_3C_3E");
    }

    #[test]
    fn controls_and_bidi_become_visible() {
        assert_eq!(visible("a\u{1b}b\u{202e}c", false), "a\\u{1b}b\\u{202e}c");
        assert_eq!(visible("a\nb", true), "a\nb");
        assert_eq!(visible("a\nb", false), "a\\u{a}b");
        assert_eq!(visible("\u{fffe}", false), "\\u{fffe}");
        assert!(matches!(visible("plain", false), Cow::Borrowed(_)));
    }

    #[test]
    fn matrix_ids_parse() {
        let m = parse_matrix("matrix/out/t-none/p-OO1/valid/srv").expect("stranger");
        assert!(m.target.is_none());
        assert!(parse_matrix("matrix/in/t-XX1/p-OO1/valid/srv").is_none());
        assert!(parse_matrix("matrix/in/t-RR1/p-OO1/valid").is_none());
        assert!(parse_matrix("matrix/sideways/t-RR1/p-OO1/valid/srv").is_none());
    }
}
