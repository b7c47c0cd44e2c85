//! Reading `Get-CsXmppAllowedPartner` output into a partner set, with the
//! position of every value, then SPEC §3 validation on it.
//!
//! Two forms are read: the default `Format-List` text (`Name : Value` lines,
//! one block per partner, long values wrapped onto indented lines) and
//! `Export-Csv` (an optional `#TYPE` line, a header row, `,` or `;`
//! delimited). Both lose data in one typical way, which is reported, never
//! imported:
//!
//! | code | meaning |
//! |------|---------|
//! | `L1` | not `Format-List` or CSV output (e.g. `Format-Table`, which cuts columns), or a malformed CSV row |
//! | `L2` | a property that is no parameter of `New-CsXmppAllowedPartner` (warning; ignored) |
//! | `L3` | a value that cannot be taken (unknown setting, not a boolean or a number) |
//! | `L4` | a required property missing (`Identity`/`Domain`, `PartnerType`, `TlsNegotiation`, `SaslNegotiation`, `SupportDialbackNegotiation`) |
//! | `L5` | a list cut short by `$FormatEnumerationLimit` (`{a, b, c, d...}`) |
//! | `L6` | a list that `Export-Csv` wrote as its .NET type name |
//!
//! Then the partner-set rules (`E1`–`E3`, `W1`, `W2`) run on the result,
//! pointing at the Lync file.

use std::collections::BTreeMap;

use crate::partner::{
    Diagnostic, Loaded, Local, Negotiation, Partner, PartnerSet, PartnerType, Position, Setting,
    Severity, SourceMap, TableSpans, validate,
};

use super::PARAMETERS;

/// Which form the input was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    FormatList,
    Csv,
}

/// The result of an import: the partner set with positions in the Lync
/// file, the form it was in, and every diagnostic (parse and validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub loaded: Loaded,
    pub form: Option<Form>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Imported {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// How to export the list properly, said with every L5/L6.
pub const PROPER_EXPORT: &str = "export it with the list joined: Get-CsXmppAllowedPartner | \
Select-Object *, @{n='AdditionalDomains';e={$_.AdditionalDomains -join ','}} -ExcludeProperty \
AdditionalDomains | Export-Csv partners.csv -NoTypeInformation (or set $FormatEnumerationLimit = -1 \
before Format-List)";

/// One property of one partner as read, with the position of its value.
#[derive(Debug, Clone)]
struct Prop {
    name: String,
    value: String,
    at: Position,
}

/// One partner's block (Format-List) or row (CSV).
#[derive(Debug, Clone)]
struct Record {
    at: Position,
    props: Vec<Prop>,
}

struct Sink<'a> {
    file: &'a str,
    out: Vec<Diagnostic>,
}

impl Sink<'_> {
    fn push(
        &mut self,
        code: &str,
        severity: Severity,
        at: Position,
        partner: Option<&str>,
        field: Option<&str>,
        message: String,
    ) {
        self.out.push(Diagnostic {
            code: code.to_string(),
            severity,
            message,
            file: self.file.to_string(),
            position: at,
            partner: partner.map(str::to_string),
            field: field.map(str::to_string),
        });
    }

    fn error(&mut self, code: &str, at: Position, partner: Option<&str>, field: &str, m: String) {
        self.push(code, Severity::Error, at, partner, Some(field), m);
    }
}

fn pos(line: usize, column: usize) -> Position {
    Position { line, column }
}

/// Imports `text` (named `file` in diagnostics); `local` fills `[local]`.
pub fn import_str(text: &str, file: &str, local: Local) -> Imported {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sink = Sink {
        file,
        out: Vec::new(),
    };
    let (form, records) = match detect(text) {
        Some(Form::Csv) => (Some(Form::Csv), read_csv(text, &mut sink)),
        Some(Form::FormatList) => (Some(Form::FormatList), read_format_list(text, &mut sink)),
        None => {
            let at = first_text_line(text);
            let message = if looks_like_table(text) {
                "this looks like Format-Table output, which cuts values to the column width; \
                 use Get-CsXmppAllowedPartner | Format-List, or Export-Csv"
            } else {
                "not Get-CsXmppAllowedPartner output: expected Format-List lines \
                 (`Identity : …`) or an Export-Csv header row"
            };
            sink.push("L1", Severity::Error, at, None, None, message.to_string());
            (None, Vec::new())
        }
    };
    let mut partners = Vec::new();
    let mut spans = Vec::new();
    for r in &records {
        if let Some((p, s)) = partner(r, &mut sink) {
            partners.push(p);
            spans.push(s);
        }
    }
    let loaded = Loaded {
        set: PartnerSet { local, partners },
        spans: SourceMap {
            file: file.to_string(),
            local: TableSpans::new(pos(1, 1)),
            partners: spans,
        },
    };
    // SPEC §3 on what could be read; fields named as PowerShell names them.
    for mut d in validate(&loaded) {
        if let Some(f) = &d.field {
            d.field = Some(super::parameter_of(f).to_string());
        }
        sink.out.push(d);
    }
    sink.out
        .sort_by_key(|d| (d.position.line, d.position.column));
    Imported {
        loaded,
        form,
        diagnostics: sink.out,
    }
}

fn first_text_line(text: &str) -> Position {
    let line = text
        .lines()
        .position(|l| !l.trim().is_empty())
        .map_or(1, |i| i + 1);
    pos(line, 1)
}

/// A `Format-Table` header underline: only dashes and blanks.
fn looks_like_table(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        t.len() >= 3 && t.contains("--") && t.chars().all(|c| c == '-' || c == ' ')
    })
}

fn detect(text: &str) -> Option<Form> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    if first.starts_with("#TYPE") || first.starts_with('"') {
        return Some(Form::Csv);
    }
    let known = |name: &str| {
        let name = name.trim().trim_matches('"');
        name.eq_ignore_ascii_case("Identity")
            || PARAMETERS.iter().any(|(_, p)| p.eq_ignore_ascii_case(name))
    };
    if (first.contains(',') || first.contains(';'))
        && first.split([',', ';']).filter(|c| known(c)).count() >= 2
    {
        return Some(Form::Csv);
    }
    if looks_like_table(text) {
        return None;
    }
    text.lines()
        .filter_map(|l| l.split_once(" :").or_else(|| l.split_once(':')))
        .any(|(name, _)| known(name))
        .then_some(Form::FormatList)
}

/// `Name : Value` blocks separated by blank lines; a line that does not
/// start a property and is indented continues the previous value.
fn read_format_list(text: &str, sink: &mut Sink) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    let mut current: Option<Record> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            records.extend(current.take());
            continue;
        }
        let property = line.find(':').and_then(|colon| {
            let name = line[..colon].trim();
            let starts = !line.starts_with(char::is_whitespace);
            (starts
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .then_some((name, colon))
        });
        match property {
            Some((name, colon)) => {
                let rest = &line[colon + 1..];
                let value = rest.trim();
                let lead = rest.len() - rest.trim_start().len();
                let column = line[..colon + 1 + lead].chars().count() + 1;
                let record = current.get_or_insert_with(|| Record {
                    at: pos(line_no, 1),
                    props: Vec::new(),
                });
                record.props.push(Prop {
                    name: name.to_string(),
                    value: value.to_string(),
                    at: pos(line_no, column),
                });
            }
            None => match current.as_mut().and_then(|r| r.props.last_mut()) {
                // Format-List wraps at the console width at a blank, which
                // it drops: put one back.
                Some(last) if line.starts_with(char::is_whitespace) => {
                    if !last.value.is_empty() {
                        last.value.push(' ');
                    }
                    last.value.push_str(line.trim());
                }
                _ => sink.push(
                    "L1",
                    Severity::Error,
                    pos(line_no, 1),
                    None,
                    None,
                    format!(
                        "not a `Name : Value` line of Format-List: {:?}",
                        line.trim()
                    ),
                ),
            },
        }
    }
    records.extend(current);
    records
}

/// One CSV cell with where it starts.
struct Cell {
    text: String,
    at: Position,
}

/// RFC 4180 rows (quoted cells may hold delimiters, `""` and line breaks).
fn csv_rows(text: &str, delimiter: char, sink: &mut Sink) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    let mut row: Vec<Cell> = Vec::new();
    let mut cell = String::new();
    let (mut line, mut column) = (1usize, 1usize);
    let mut start = pos(1, 1);
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    let mut row_has_content = false;
    while let Some(c) = chars.next() {
        let here = pos(line, column);
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    column += 1;
                    cell.push('"');
                }
                '"' => quoted = false,
                c => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
                row_has_content = true;
            }
            '\r' => {}
            c if c == delimiter => {
                row.push(Cell {
                    text: std::mem::take(&mut cell),
                    at: start,
                });
                start = pos(line, column);
                was_quoted = false;
                row_has_content = true;
            }
            '\n' => {
                if row_has_content || !cell.is_empty() {
                    row.push(Cell {
                        text: std::mem::take(&mut cell),
                        at: start,
                    });
                    rows.push(std::mem::take(&mut row));
                }
                start = pos(line, column);
                was_quoted = false;
                row_has_content = false;
            }
            c => {
                if was_quoted {
                    sink.push(
                        "L1",
                        Severity::Error,
                        here,
                        None,
                        None,
                        "text after the closing quote of a CSV cell".to_string(),
                    );
                }
                cell.push(c);
                row_has_content = true;
            }
        }
    }
    if quoted {
        sink.push(
            "L1",
            Severity::Error,
            start,
            None,
            None,
            "a quoted CSV cell is never closed".to_string(),
        );
    }
    if row_has_content || !cell.is_empty() {
        row.push(Cell {
            text: cell,
            at: start,
        });
        rows.push(row);
    }
    rows
}

fn read_csv(text: &str, sink: &mut Sink) -> Vec<Record> {
    // `#TYPE` names the exported type (Windows PowerShell without
    // -NoTypeInformation); it is not part of the table.
    let mut body_start = 0;
    let mut offset_lines = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with("#TYPE") || t.is_empty() {
            body_start += line.len();
            offset_lines += 1;
        } else {
            break;
        }
    }
    let body = &text[body_start..];
    let header_line = body.lines().next().unwrap_or("");
    let delimiter = if !header_line.contains(',') && header_line.contains(';') {
        ';'
    } else {
        ','
    };
    let mut rows = csv_rows(body, delimiter, sink).into_iter();
    let shift = |p: Position| pos(p.line + offset_lines, p.column);
    let Some(header) = rows.next() else {
        return Vec::new();
    };
    let names: Vec<String> = header.iter().map(|c| c.text.trim().to_string()).collect();
    let mut records = Vec::new();
    for row in rows {
        let at = shift(row.first().map_or(pos(1, 1), |c| c.at));
        if row.len() != names.len() {
            sink.push(
                "L1",
                Severity::Error,
                at,
                None,
                None,
                format!(
                    "a CSV row of {} cells under a header of {}",
                    row.len(),
                    names.len()
                ),
            );
            continue;
        }
        records.push(Record {
            at,
            props: names
                .iter()
                .zip(row)
                .map(|(name, cell)| Prop {
                    name: name.clone(),
                    value: cell.text,
                    at: shift(cell.at),
                })
                .collect(),
        });
    }
    records
}

/// Whether `value` is a .NET type name (what Export-Csv writes for a
/// collection): `System.…` or `Microsoft.…` with PascalCase segments, or
/// generic syntax. Domains are case-insensitive and exported lower-case,
/// and none ends in such a chain of capitalised labels.
pub fn is_type_name(value: &str) -> bool {
    let v = value.trim();
    if !(v.starts_with("System.") || v.starts_with("Microsoft.")) {
        return false;
    }
    if v.contains('`') || v.contains('[') {
        return true;
    }
    let segments: Vec<&str> = v.split('.').collect();
    segments.len() >= 3
        && segments.iter().all(|s| {
            s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn setting(v: &str) -> Option<Setting> {
    let v = v.trim().replace('-', "");
    [
        ("required", Setting::Required),
        ("optional", Setting::Optional),
        ("notsupported", Setting::NotSupported),
    ]
    .into_iter()
    .find(|(s, _)| v.eq_ignore_ascii_case(s))
    .map(|(_, s)| s)
}

fn partner_type(v: &str) -> Option<PartnerType> {
    let v = v.trim().replace('-', "");
    [
        ("federated", PartnerType::Federated),
        ("publicverified", PartnerType::PublicVerified),
        ("publicunverified", PartnerType::PublicUnverified),
    ]
    .into_iter()
    .find(|(s, _)| v.eq_ignore_ascii_case(s))
    .map(|(_, t)| t)
}

fn boolean(v: &str) -> Option<bool> {
    match v
        .trim()
        .trim_start_matches('$')
        .to_ascii_lowercase()
        .as_str()
    {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The domains of an `AdditionalDomains` value, or the L5/L6 reason why
/// they cannot be taken.
fn domain_list(value: &str) -> Result<Vec<String>, (&'static str, String)> {
    let v = value.trim();
    if is_type_name(v) {
        return Err((
            "L6",
            format!(
                "it holds the .NET type name `{v}`, not the domains: Export-Csv writes a collection as its type name; {PROPER_EXPORT}"
            ),
        ));
    }
    let inner = v
        .strip_prefix('{')
        .map(|s| s.strip_suffix('}').unwrap_or(s))
        .unwrap_or(v)
        .trim();
    if inner.ends_with("...") || inner.ends_with('…') {
        // `...` follows the last item shown: every item before it is whole.
        let shown = inner.split(',').count();
        return Err((
            "L5",
            format!(
                "`{v}` was cut short by $FormatEnumerationLimit: it shows only the first {shown} domain(s) of a longer list; {PROPER_EXPORT}"
            ),
        ));
    }
    Ok(inner
        .split([',', ';', ' ', '\t'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_ascii_lowercase)
        .collect())
}

/// The partner of one record, or `None` when a required part is missing
/// or unreadable (every problem is reported either way).
fn partner(r: &Record, sink: &mut Sink) -> Option<(Partner, TableSpans)> {
    let mut by_name: BTreeMap<&'static str, &Prop> = BTreeMap::new();
    let mut identity: Option<&Prop> = None;
    for p in &r.props {
        if p.name.eq_ignore_ascii_case("Identity") {
            identity = Some(p);
        } else if let Some((field, _)) = PARAMETERS
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(&p.name))
        {
            by_name.insert(field, p);
        } else {
            sink.push(
                "L2",
                Severity::Warning,
                p.at,
                None,
                Some(&p.name),
                format!(
                    "`{}` is no parameter of New-CsXmppAllowedPartner; ignored",
                    p.name
                ),
            );
        }
    }
    let mut spans = TableSpans::new(r.at);
    // Domain, else Identity (they are the same value in Lync).
    let domain_prop = match (by_name.get("domain").copied(), identity) {
        (Some(d), Some(i)) if !i.value.trim().eq_ignore_ascii_case(d.value.trim()) => {
            sink.error(
                "L3",
                i.at,
                Some(d.value.trim()),
                "Identity",
                format!(
                    "Identity `{}` and Domain `{}` differ; Lync keeps them equal",
                    i.value.trim(),
                    d.value.trim()
                ),
            );
            Some(d)
        }
        (Some(d), _) => Some(d),
        (None, i) => i.filter(|i| !i.value.trim().is_empty()),
    };
    let Some(domain_prop) = domain_prop else {
        sink.error(
            "L4",
            r.at,
            None,
            "Domain",
            "no Identity or Domain: the partner's domain is missing".into(),
        );
        return None;
    };
    let domain = domain_prop.value.trim().to_ascii_lowercase();
    spans.fields.insert("domain", domain_prop.at);
    let who = Some(domain.as_str());
    for (field, p) in &by_name {
        spans.fields.insert(field, p.at);
    }
    let mut ok = true;
    let required = |field: &'static str, sink: &mut Sink| -> Option<&Prop> {
        let p = by_name.get(field).copied();
        if p.is_none() {
            sink.error(
                "L4",
                r.at,
                who,
                super::parameter_of(field),
                format!("{} is missing", super::parameter_of(field)),
            );
        }
        p
    };
    let bad = |sink: &mut Sink, p: &Prop, field: &str, expected: &str| {
        sink.error(
            "L3",
            p.at,
            who,
            super::parameter_of(field),
            format!(
                "{} `{}`: expected {expected}",
                super::parameter_of(field),
                p.value.trim()
            ),
        );
    };
    let tls = required("tls", sink).and_then(|p| {
        setting(&p.value).or_else(|| {
            bad(sink, p, "tls", "Required, Optional or NotSupported");
            None
        })
    });
    let sasl = required("sasl", sink).and_then(|p| {
        setting(&p.value).or_else(|| {
            bad(sink, p, "sasl", "Required, Optional or NotSupported");
            None
        })
    });
    let dialback = required("dialback", sink).and_then(|p| {
        boolean(&p.value).or_else(|| {
            bad(sink, p, "dialback", "True or False");
            None
        })
    });
    let kind = required("type", sink).and_then(|p| {
        partner_type(&p.value).or_else(|| {
            bad(
                sink,
                p,
                "type",
                "Federated, PublicVerified or PublicUnverified",
            );
            None
        })
    });
    let text = |field: &str| {
        by_name
            .get(field)
            .map(|p| p.value.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let connection_limit = match by_name.get("connection-limit") {
        Some(p) if !p.value.trim().is_empty() => match p.value.trim().parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                bad(sink, p, "connection-limit", "a number from 1 to 4294967295");
                ok = false;
                None
            }
        },
        _ => None,
    };
    let keep_alive = match by_name.get("keep-alive") {
        Some(p) if !p.value.trim().is_empty() => boolean(&p.value).unwrap_or_else(|| {
            bad(sink, p, "keep-alive", "True or False");
            ok = false;
            false
        }),
        _ => false,
    };
    let additional_domains = match by_name.get("additional-domains") {
        Some(p) => match domain_list(&p.value) {
            Ok(list) => {
                // Positions of the items: the value's, one per domain.
                spans
                    .items
                    .insert("additional-domains", vec![p.at; list.len()]);
                list
            }
            Err((code, message)) => {
                sink.error(
                    code,
                    p.at,
                    who,
                    "AdditionalDomains",
                    format!("AdditionalDomains: {message}"),
                );
                ok = false;
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let (Some(tls), Some(sasl), Some(dialback), Some(partner_type)) = (tls, sasl, dialback, kind)
    else {
        return None;
    };
    if !ok {
        return None;
    }
    Some((
        Partner {
            domain: domain.clone(),
            description: text("description"),
            additional_domains,
            partner_type,
            negotiation: Negotiation::new(tls, sasl, dialback),
            proxy_fqdn: text("proxy-fqdn").map(|f| f.to_ascii_lowercase()),
            connection_limit,
            keep_alive,
        },
        spans,
    ))
}

/// A TOML string (basic string, escaped as TOML requires).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The partner set as a partner-set file (SPEC §2.1) that `s2spec
/// validate` and `s2spec serve --partners` read; `source` is named in the
/// header comment.
pub fn partner_toml(set: &PartnerSet, source: &str) -> String {
    let list = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|s| toml_string(s)).collect();
        format!("[{}]", items.join(", "))
    };
    let mut out = format!(
        "# Imported from {source} by `s2spec import-lync` ({} partner(s)).\n",
        set.partners.len()
    );
    if !set.local.domains.is_empty() || !set.local.users.is_empty() {
        out.push_str(&format!(
            "\n[local]\ndomains = {}\nusers = {}\n",
            list(&set.local.domains),
            list(&set.local.users)
        ));
    }
    for p in &set.partners {
        out.push_str(&format!(
            "\n[[partner]]\ndomain = {}\n",
            toml_string(&p.domain)
        ));
        if let Some(d) = &p.description {
            out.push_str(&format!("description = {}\n", toml_string(d)));
        }
        if !p.additional_domains.is_empty() {
            out.push_str(&format!(
                "additional-domains = {}\n",
                list(&p.additional_domains)
            ));
        }
        let n = p.negotiation;
        out.push_str(&format!(
            "type = \"{}\"\ntls = \"{}\"\nsasl = \"{}\"\ndialback = {}\n",
            p.partner_type, n.tls, n.sasl, n.dialback
        ));
        if let Some(f) = &p.proxy_fqdn {
            out.push_str(&format!("proxy-fqdn = {}\n", toml_string(f)));
        }
        if let Some(l) = p.connection_limit {
            out.push_str(&format!("connection-limit = {l}\n"));
        }
        out.push_str(&format!("keep-alive = {}\n", p.keep_alive));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_told_from_domains() {
        assert!(is_type_name(
            "System.Collections.Generic.List`1[System.String]"
        ));
        assert!(is_type_name(
            "Microsoft.Rtc.Management.WritableConfig.Policy.Xmpp.XmppDomainCollection"
        ));
        assert!(is_type_name("System.Object[]"));
        assert!(!is_type_name("system.example.test"));
        assert!(!is_type_name("microsoft.com"));
        assert!(!is_type_name("corp.fabrikam.test"));
    }

    #[test]
    fn lists_in_their_spellings() {
        assert_eq!(domain_list("{}").unwrap(), Vec::<String>::new());
        assert_eq!(domain_list("").unwrap(), Vec::<String>::new());
        assert_eq!(
            domain_list("{A.test, b.test}").unwrap(),
            ["a.test", "b.test"]
        );
        assert_eq!(domain_list("a.test;b.test").unwrap(), ["a.test", "b.test"]);
        assert_eq!(
            domain_list("{a.test, b.test, c.test, d.test...}")
                .unwrap_err()
                .0,
            "L5"
        );
        assert_eq!(
            domain_list("{a.test, b.test, c.test, d.test…}")
                .unwrap_err()
                .0,
            "L5"
        );
        assert_eq!(domain_list("System.Object[]").unwrap_err().0, "L6");
    }

    #[test]
    fn toml_strings_survive_a_round_trip() {
        for s in [
            "a\"b",
            "it's",
            "tab\there",
            "\u{7f}del",
            "line\nbreak",
            "\\",
        ] {
            let doc = format!("x = {}", toml_string(s));
            let back: toml::Table = toml::from_str(&doc).unwrap();
            assert_eq!(back["x"].as_str(), Some(s), "{doc}");
        }
    }
}
