//! "How this target behaves as initiating server": a few lines of facts
//! built from every case's `observed.initiating` (the connections the target
//! opened to a peer's server and the names it resolved), for the Markdown
//! and HTML reports. Pure: counts, no verdicts.

use std::collections::BTreeMap;

use super::{Connection, Initiating, Report};

/// One line of the section: a label and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub label: &'static str,
    pub text: String,
}

/// The section's lines; empty when no case saw the target initiate.
pub fn summary(report: &Report) -> Vec<Line> {
    let cases: Vec<&Initiating> = report
        .cases
        .iter()
        .filter_map(|c| c.observed.as_ref()?.initiating.as_ref())
        .collect();
    let connections: Vec<&Connection> = cases.iter().flat_map(|i| &i.connections).collect();
    if connections.is_empty() && cases.iter().all(|i| i.dns_queries.is_empty()) {
        return Vec::new();
    }
    let mut lines = vec![Line {
        label: "observed in",
        text: format!(
            "{} case(s): {} connection(s) to a peer's server",
            cases.iter().filter(|i| !i.connections.is_empty()).count(),
            connections.len()
        ),
    }];
    let tls: Vec<_> = connections.iter().filter_map(|c| c.tls.as_ref()).collect();
    if !tls.is_empty() {
        let with_sni = tls.iter().filter(|t| t.sni.is_some()).count();
        // The SNI should name the domain the stream is addressed to.
        let matching = connections
            .iter()
            .filter(|c| {
                c.tls
                    .as_ref()
                    .and_then(|t| t.sni.as_deref())
                    .is_some_and(|sni| {
                        c.headers.iter().any(|h| {
                            h.to.as_deref()
                                .is_some_and(|to| to.eq_ignore_ascii_case(sni))
                        })
                    })
            })
            .count();
        lines.push(Line {
            label: "SNI sent",
            text: format!(
                "yes in {with_sni}/{} TLS handshakes ({matching} naming the domain in the stream's to)",
                tls.len()
            ),
        });
        lines.push(Line {
            label: "TLS version",
            text: counted(tls.iter().map(|t| t.version.clone().unwrap_or("?".into()))),
        });
        lines.push(Line {
            label: "cipher suite",
            text: counted(
                tls.iter()
                    .map(|t| t.cipher_suite.clone().unwrap_or("?".into())),
            ),
        });
        lines.push(Line {
            label: "client certificate",
            text: format!(
                "presented in {}/{} TLS handshakes",
                tls.iter().filter(|t| t.client_cert).count(),
                tls.len()
            ),
        });
    }
    let direct: Vec<_> = connections
        .iter()
        .filter_map(|c| c.direct_tls.as_ref())
        .collect();
    if !direct.is_empty() {
        lines.push(Line {
            label: "direct TLS (XEP-0368)",
            text: format!(
                "{} ClientHello(s) on a STARTTLS port: SNI {}; ALPN {}",
                direct.len(),
                counted(
                    direct
                        .iter()
                        .map(|d| if d.sni.is_some() { "set" } else { "missing" }.to_string())
                ),
                counted(direct.iter().map(|d| {
                    if d.alpn.is_empty() {
                        "none".to_string()
                    } else {
                        d.alpn.join(",")
                    }
                }))
            ),
        });
    }
    let headers: Vec<_> = connections.iter().flat_map(|c| &c.headers).collect();
    if !headers.is_empty() {
        let n = headers.len();
        let count =
            |f: &dyn Fn(&&super::HeaderFacts) -> bool| headers.iter().filter(|h| f(h)).count();
        lines.push(Line {
            label: "stream headers",
            text: format!(
                "{n} sent: from in {}, to in {}, version 1.0 in {}, xmlns:db declared in {}",
                count(&|h| h.from.is_some()),
                count(&|h| h.to.is_some()),
                count(&|h| h.version.as_deref() == Some("1.0")),
                count(&|h| h.dialback_declared),
            ),
        });
    }
    let orders: Vec<String> = cases
        .iter()
        .filter(|i| !i.dns_queries.is_empty())
        .map(|i| lookup_order(i))
        .collect();
    if !orders.is_empty() {
        lines.push(Line {
            label: "DNS lookups",
            text: counted(orders.into_iter()),
        });
    }
    let per_case = |pick: &dyn Fn(&Connection) -> bool| {
        let counts: Vec<usize> = cases
            .iter()
            .map(|i| i.connections.iter().filter(|c| pick(c)).count())
            .filter(|n| *n > 0)
            .collect();
        (!counts.is_empty())
            .then(|| counted(counts.into_iter().map(|n| format!("{n} connection(s)"))))
    };
    if let Some(text) = per_case(&|c| c.used_for.iter().any(|u| u == "db:verify")) {
        lines.push(Line {
            label: "per dialback verification",
            text,
        });
    }
    if let Some(text) = per_case(&|_| true) {
        lines.push(Line {
            label: "per case",
            text,
        });
    }
    lines
}

/// The order of a case's lookups, the domain left out: SRV names by their
/// service label, address lookups as one `A/AAAA` step (the resolver asks
/// both at once, so their order is noise).
fn lookup_order(i: &Initiating) -> String {
    let mut steps: Vec<String> = Vec::new();
    for q in &i.dns_queries {
        let step = match q.rtype.as_str() {
            "A" | "AAAA" => "A/AAAA".to_string(),
            other => {
                let service: Vec<&str> = q
                    .name
                    .split('.')
                    .take_while(|l| l.starts_with('_'))
                    .collect();
                if service.is_empty() {
                    other.to_string()
                } else {
                    format!("{} {other}", service.join("."))
                }
            }
        };
        if steps.last() != Some(&step) {
            steps.push(step);
        }
    }
    steps.join(" → ")
}

/// `x in N, y in M` by falling count (ties alphabetical).
fn counted(values: impl Iterator<Item = String>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut pairs: Vec<(String, usize)> = counts.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    pairs
        .into_iter()
        .map(|(v, n)| format!("{v} in {n}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DnsQuery;

    #[test]
    fn lookup_order_names_services_and_merges_address_lookups() {
        let q = |name: &str, rtype: &str| DnsQuery {
            name: name.into(),
            rtype: rtype.into(),
        };
        let i = Initiating {
            dns_queries: vec![
                q("_xmpps-server._tcp.p.test", "SRV"),
                q("_xmpp-server._tcp.p.test", "SRV"),
                q("p.test", "AAAA"),
                q("p.test", "A"),
            ],
            connections: vec![],
        };
        assert_eq!(
            lookup_order(&i),
            "_xmpps-server._tcp SRV → _xmpp-server._tcp SRV → A/AAAA"
        );
        assert_eq!(
            counted(["b", "a", "b"].into_iter().map(String::from)),
            "b in 2; a in 1"
        );
    }
}
