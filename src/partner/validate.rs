//! The validation rules of SPEC §3, as a pure function of a loaded partner set.
//!
//! | code | severity | rule | points at |
//! |------|----------|------|-----------|
//! | `E1` | error | SASL requires TLS: `sasl` is `required`/`optional` while `tls` is `not-supported` | `sasl` |
//! | `E2` | error | SASL or Dialback must be enabled: the settings admit no authentication method (SPEC §4 rows 6, 12, 14, 16, 18) | `dialback` |
//! | `E3` | error | a domain that is not a valid DNS name, or a domain claimed twice | the domain |
//! | `W1` | warning | `tls` optional with `sasl` required/optional: negotiation may fail | `tls` |
//! | `W2` | warning | `tls` and `sasl` required with `dialback` true: dialback will not operate | `dialback` |
//!
//! `E3` covers primary and additional domains, `proxy-fqdn` and `[local]
//! domains`. "Claimed twice" means: by two partners, by a partner and the
//! target itself (`[local] domains`), or twice by the same owner (a repeated
//! entry is a typo in waiting; the later occurrence is reported).
//!
//! A valid DNS name here is what a federation domain can be (see
//! [`dns_name_problem`]): at least two dot-separated labels of 1–63 ASCII
//! letters, digits or hyphens, no label starting or ending with a hyphen, at most
//! 253 characters, no trailing dot, no wildcard, and a last label that is not
//! all digits (so an IP address is not mistaken for a domain). A single-label
//! name is rejected: it cannot be resolved through public SRV records, so it
//! cannot name a federation partner. Internationalised names must be written in
//! their A-label (`xn--`) form.

use std::collections::HashMap;

use super::load::{Loaded, TableSpans};
use super::method::methods;
use super::model::{Diagnostic, Negotiation, Partner, Position, Setting, Severity};

/// Every diagnostic the set deserves (errors and warnings), sorted by position.
pub fn validate(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut v = Validator {
        file: &loaded.spans.file,
        out: Vec::new(),
    };
    let fallback = TableSpans::new(Position { line: 1, column: 1 });
    for (i, partner) in loaded.set.partners.iter().enumerate() {
        let spans = loaded.spans.partners.get(i).unwrap_or(&fallback);
        v.negotiation(partner, spans);
        v.proxy_fqdn(partner, spans);
    }
    let entries = domain_entries(loaded, &fallback);
    v.domain_names(&entries);
    v.duplicates(entries);
    let mut out = v.out;
    out.sort_by(|a, b| {
        let key = |d: &Diagnostic| (d.position.line, d.position.column);
        key(a).cmp(&key(b)).then_with(|| a.code.cmp(&b.code))
    });
    out
}

/// Why `name` is not a valid federation domain, or `None` when it is. See the
/// module documentation for the rules.
pub fn dns_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_string());
    }
    if name.len() > 253 {
        return Some("it is longer than 253 characters".to_string());
    }
    if name.ends_with('.') {
        return Some("it ends with a dot; write it without the trailing dot".to_string());
    }
    if !name.contains('.') {
        return Some(
            "it is a single label; a federation domain has at least two (e.g. example.test)"
                .to_string(),
        );
    }
    if let Some(problem) = name.split('.').find_map(label_problem) {
        return Some(problem);
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.chars().all(|c| c.is_ascii_digit()) {
        return Some("its last label is numeric; an IP address is not a domain".to_string());
    }
    None
}

fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("it has an empty label (two dots in a row, or a leading dot)".to_string());
    }
    if label.contains('*') {
        return Some("it contains a wildcard; every domain must be listed explicitly".to_string());
    }
    if !label.is_ascii() {
        return Some("it contains non-ASCII characters; use the A-label (xn--) form".to_string());
    }
    if label.len() > 63 {
        return Some(format!("label `{label}` is longer than 63 characters"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "label `{label}` contains {c:?}; only letters, digits and hyphens are allowed"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some(format!("label `{label}` starts or ends with a hyphen"));
    }
    None
}

/// Who claims a domain: the target itself or partner number N (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Local,
    Partner(usize),
}

/// One domain as written in the file.
struct Entry<'a> {
    name: &'a str,
    position: Position,
    owner: Owner,
    /// Primary domain of the owning partner.
    partner: Option<&'a str>,
    field: &'static str,
}

/// Every local, primary and additional domain, in file order.
fn domain_entries<'a>(loaded: &'a Loaded, fallback: &'a TableSpans) -> Vec<Entry<'a>> {
    let local = &loaded.spans.local;
    let mut entries: Vec<Entry<'a>> = loaded
        .set
        .local
        .domains
        .iter()
        .enumerate()
        .map(|(i, name)| Entry {
            name,
            position: local.item("domains", i),
            owner: Owner::Local,
            partner: None,
            field: "domains",
        })
        .collect();
    for (p, partner) in loaded.set.partners.iter().enumerate() {
        let spans = loaded.spans.partners.get(p).unwrap_or(fallback);
        let owner = Owner::Partner(p);
        let primary = Some(partner.domain.as_str());
        entries.push(Entry {
            name: &partner.domain,
            position: spans.field("domain"),
            owner,
            partner: primary,
            field: "domain",
        });
        entries.extend(
            partner
                .additional_domains
                .iter()
                .enumerate()
                .map(|(i, name)| Entry {
                    name,
                    position: spans.item("additional-domains", i),
                    owner,
                    partner: primary,
                    field: "additional-domains",
                }),
        );
    }
    entries.sort_by_key(|e| (e.position.line, e.position.column));
    entries
}

struct Validator<'a> {
    file: &'a str,
    out: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn push(
        &mut self,
        code: &str,
        severity: Severity,
        position: Position,
        partner: Option<&str>,
        field: &str,
        message: String,
    ) {
        self.out.push(Diagnostic {
            code: code.to_string(),
            severity,
            message,
            file: self.file.to_string(),
            position,
            partner: partner.map(str::to_string),
            field: Some(field.to_string()),
        });
    }

    /// E1, E2, W1, W2: the TLS/SASL/Dialback combination.
    fn negotiation(&mut self, partner: &Partner, spans: &TableSpans) {
        let who = Some(partner.domain.as_str());
        for f in negotiation_findings(partner.negotiation) {
            self.push(
                f.code,
                f.severity,
                spans.field(f.field),
                who,
                f.field,
                f.message,
            );
        }
    }

    /// E3 for a proxy FQDN that is not a DNS name. Several partners may share
    /// one proxy, so it takes no part in the duplicate check.
    fn proxy_fqdn(&mut self, partner: &Partner, spans: &TableSpans) {
        let Some(fqdn) = &partner.proxy_fqdn else {
            return;
        };
        if let Some(problem) = dns_name_problem(fqdn) {
            let message = format!("invalid proxy FQDN \"{fqdn}\": {problem}");
            let at = spans.field("proxy-fqdn");
            let who = Some(partner.domain.as_str());
            self.push("E3", Severity::Error, at, who, "proxy-fqdn", message);
        }
    }

    /// E3 for every domain that is not a DNS name.
    fn domain_names(&mut self, entries: &[Entry<'_>]) {
        for e in entries {
            if let Some(problem) = dns_name_problem(e.name) {
                let message = format!("invalid domain \"{}\": {problem}", e.name);
                self.push(
                    "E3",
                    Severity::Error,
                    e.position,
                    e.partner,
                    e.field,
                    message,
                );
            }
        }
    }

    /// E3 for every later occurrence of a domain already claimed. Invalid names
    /// are skipped: they already have their E3.
    fn duplicates(&mut self, entries: Vec<Entry<'_>>) {
        let mut seen: HashMap<&str, &Entry<'_>> = HashMap::new();
        for e in &entries {
            if dns_name_problem(e.name).is_some() {
                continue;
            }
            match seen.get(e.name) {
                Some(first) => {
                    let message = duplicate_message(first, e);
                    self.push(
                        "E3",
                        Severity::Error,
                        e.position,
                        e.partner,
                        e.field,
                        message,
                    );
                }
                None => {
                    seen.insert(e.name, e);
                }
            }
        }
    }
}

fn duplicate_message(first: &Entry<'_>, again: &Entry<'_>) -> String {
    let name = again.name;
    let line = first.position.line;
    match (first.owner, again.owner) {
        (a, b) if a == b => format!("domain \"{name}\" is listed twice (first on line {line})"),
        (Owner::Local, _) => format!(
            "domain \"{name}\" is a local domain of the target (line {line}); it cannot belong to a partner"
        ),
        (Owner::Partner(_), Owner::Local) => format!(
            "local domain \"{name}\" already belongs to partner {} (line {line})",
            first.partner.unwrap_or("?")
        ),
        (Owner::Partner(_), Owner::Partner(_)) => format!(
            "domain \"{name}\" belongs to two partners: it is already a domain of partner {} (line {line})",
            first.partner.unwrap_or("?")
        ),
    }
}

/// One finding about a TLS/SASL/Dialback combination, before it is placed in
/// a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationFinding {
    pub code: &'static str,
    pub severity: Severity,
    /// The field the diagnostic points at.
    pub field: &'static str,
    pub message: String,
}

/// The E1, E2, W1 and W2 rules of SPEC §3 for one combination: a pure
/// function of the three settings, shared by file validation and the matrix.
pub fn negotiation_findings(n: Negotiation) -> Vec<NegotiationFinding> {
    let (tls, sasl, dialback) = (n.tls, n.sasl, n.dialback);
    let mut out = Vec::new();
    let mut push = |code, severity, field, message: String| {
        out.push(NegotiationFinding {
            code,
            severity,
            field,
            message,
        })
    };
    if sasl.enabled() && tls == Setting::NotSupported {
        let message = format!("SASL requires TLS: sasl = {sasl} while tls = not-supported");
        push("E1", Severity::Error, "sasl", message);
    }
    if methods(n).is_empty() {
        let message = format!(
            "SASL or Dialback must be enabled: tls = {tls}, sasl = {sasl}, dialback = {dialback} \
             admits no authentication method"
        );
        push("E2", Severity::Error, "dialback", message);
    }
    if tls == Setting::Optional && sasl.enabled() {
        let message = format!(
            "SASL requires TLS; TLS optional may make negotiation fail (tls = optional, sasl = {sasl})"
        );
        push("W1", Severity::Warning, "tls", message);
    }
    if tls == Setting::Required && sasl == Setting::Required && dialback {
        let message = "Dialback will not operate when both TLS and SASL are required \
                       (tls = required, sasl = required, dialback = true)"
            .to_string();
        push("W2", Severity::Warning, "dialback", message);
    }
    out
}

/// Whether a configuration with these settings can be saved (no E-code).
pub fn negotiation_is_valid(n: Negotiation) -> bool {
    negotiation_findings(n)
        .iter()
        .all(|f| f.severity != Severity::Error)
}
