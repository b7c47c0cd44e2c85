//! Loading a partner-set file (SPEC §2.1) into a [`PartnerSet`], keeping the
//! source position of every partner, field and list element so that
//! validation can point at them.
//!
//! The document is parsed with `toml::de::DeTable` (a spanned tree) and walked
//! by hand rather than through serde derive: serde stops at the first problem,
//! and a file with several mistakes should get all of them in one run.
//!
//! # Parse diagnostics
//!
//! Every code is stable; all are errors. Positions are 1-based; columns count
//! characters, not bytes.
//!
//! | code | meaning | points at |
//! |------|---------|-----------|
//! | `P1` | TOML syntax error (including duplicate keys), or the file is not UTF-8. Only the first one is reported. | the offending text |
//! | `P2` | unknown key: at the top level (only `local` and `partner` exist), in `[local]`, or in a partner | the key |
//! | `P3` | wrong type, e.g. a string where a boolean is expected, or `[partner]` instead of `[[partner]]` | the value |
//! | `P4` | unknown enum value for `type`, `tls` or `sasl` | the value |
//! | `P5` | missing required partner field: `domain`, `type`, `tls`, `sasl` or `dialback` | the partner's `[[partner]]` header |
//! | `P6` | value out of range: `connection-limit` must be between 1 and 4294967295 | the value |
//!
//! Apart from `P1`, every problem in the file is reported, across all partners.
//! A diagnostic names the partner by its primary domain when that domain could
//! be read; otherwise the message says which partner (`partner #N`, 1-based).
//!
//! Enum values accept the kebab-case spelling (`not-supported`,
//! `public-verified`) and the PowerShell one (`NotSupported`, `PublicVerified`),
//! both case-insensitively. Domains (primary, additional, `proxy-fqdn`, and
//! `[local] domains`) are lower-cased; whether they are valid DNS names is
//! checked by validation (`E3`), not here.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::model::{
    Diagnostic, Local, Negotiation, Partner, PartnerSet, PartnerType, Position, Setting, Severity,
};

/// A partner set together with where each of its parts came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub set: PartnerSet,
    pub spans: SourceMap,
}

/// Source positions of a loaded partner-set file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMap {
    /// The file name as given to the loader; diagnostics repeat it.
    pub file: String,
    /// Positions inside `[local]` (the table position is 1:1 when it is absent).
    pub local: TableSpans,
    /// One entry per partner, parallel to `PartnerSet::partners`.
    pub partners: Vec<TableSpans>,
}

/// Positions inside one table: the table itself, each present key, and each
/// element of list fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpans {
    /// The table header (`[[partner]]`, `[local]`) or inline table.
    pub table: Position,
    /// Position of each key present in the file, by its file spelling.
    pub fields: BTreeMap<&'static str, Position>,
    /// Position of each element of list fields (`additional-domains`,
    /// `domains`, `users`), in file order.
    pub items: BTreeMap<&'static str, Vec<Position>>,
}

impl TableSpans {
    /// Spans of a table at `table` with no fields recorded yet.
    pub fn new(table: Position) -> Self {
        TableSpans {
            table,
            fields: BTreeMap::new(),
            items: BTreeMap::new(),
        }
    }

    /// Where `field`'s key is, or the table when the field is absent (an
    /// optional field left at its default).
    pub fn field(&self, field: &str) -> Position {
        self.fields.get(field).copied().unwrap_or(self.table)
    }

    /// Where element `index` of list `field` is, falling back to the field.
    pub fn item(&self, field: &str, index: usize) -> Position {
        self.items
            .get(field)
            .and_then(|items| items.get(index))
            .copied()
            .unwrap_or_else(|| self.field(field))
    }
}

/// Why a partner-set file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a well-formed partner set (`P…` codes).
    #[error("{} parse error(s)", .0.len())]
    Parse(Vec<Diagnostic>),
}

/// Reads and loads the partner-set file at `path`; diagnostics name the file
/// as `path` was spelled.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file_name = path.display().to_string();
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Err(LoadError::Parse(vec![not_utf8(&e, &file_name)])),
    };
    load_str(&text, &file_name).map_err(LoadError::Parse)
}

/// Loads a partner set from `text`; `file_name` is only used in diagnostics.
/// On failure returns every parse diagnostic found, sorted by position.
pub fn load_str(text: &str, file_name: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let mut loader = Loader::new(text, file_name);
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let at = e.span().unwrap_or(0..0);
            loader.report("P1", at, None, None, e.message().to_string());
            return Err(loader.diags);
        }
    };
    let loaded = loader.document(root.get_ref());
    if loader.diags.is_empty() {
        Ok(loaded)
    } else {
        let mut diags = loader.diags;
        diags.sort_by_key(|d| (d.position.line, d.position.column));
        Err(diags)
    }
}

/// P1 for a file that is not UTF-8, pointing at the first bad byte.
fn not_utf8(e: &std::string::FromUtf8Error, file_name: &str) -> Diagnostic {
    let valid = e
        .as_bytes()
        .get(..e.utf8_error().valid_up_to())
        .unwrap_or(&[]);
    // The prefix is valid UTF-8 by definition; lossy conversion cannot alter it.
    let prefix = String::from_utf8_lossy(valid);
    let position = Lines::new(&prefix).position(prefix.len());
    Diagnostic {
        code: "P1".to_string(),
        severity: Severity::Error,
        message: "the file is not valid UTF-8".to_string(),
        file: file_name.to_string(),
        position,
        partner: None,
        field: None,
    }
}

/// Byte offset → 1-based line and column.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Lines { text, starts }
    }

    fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        // Count characters so that columns match what editors show.
        let column = match self.text.get(start..offset) {
            // A byte-order mark is invisible in editors: do not count it.
            Some(s) if start == 0 => s.trim_start_matches('\u{feff}').chars().count() + 1,
            Some(s) => s.chars().count() + 1,
            None => offset - start + 1,
        };
        Position { line, column }
    }
}

const TOP_KEYS: &[&str] = &["local", "partner"];
const LOCAL_KEYS: &[&str] = &["domains", "users"];
const PARTNER_KEYS: &[&str] = &[
    "domain",
    "description",
    "additional-domains",
    "type",
    "tls",
    "sasl",
    "dialback",
    "proxy-fqdn",
    "connection-limit",
    "keep-alive",
];
const REQUIRED_PARTNER_KEYS: &[&str] = &["domain", "type", "tls", "sasl", "dialback"];

const SETTINGS: &[(&str, Setting)] = &[
    ("required", Setting::Required),
    ("optional", Setting::Optional),
    ("not-supported", Setting::NotSupported),
];
const PARTNER_TYPES: &[(&str, PartnerType)] = &[
    ("federated", PartnerType::Federated),
    ("public-verified", PartnerType::PublicVerified),
    ("public-unverified", PartnerType::PublicUnverified),
];

type Value<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<DeString<'i>>;

fn key_str<'k>(key: &'k Key<'_>) -> &'k str {
    key.get_ref()
}

/// Which partner a diagnostic is about: its primary domain when readable,
/// and its 1-based index for messages otherwise.
#[derive(Clone, Copy)]
struct Who<'s> {
    domain: Option<&'s str>,
    index: usize,
}

impl Who<'_> {
    fn label(&self) -> String {
        match self.domain {
            Some(d) => format!("partner {d}"),
            None => format!("partner #{}", self.index),
        }
    }
}

/// Walks the spanned TOML tree, collecting diagnostics as it goes.
struct Loader<'a> {
    file: &'a str,
    lines: Lines<'a>,
    diags: Vec<Diagnostic>,
}

impl<'a> Loader<'a> {
    fn new(text: &'a str, file: &'a str) -> Self {
        Loader {
            file,
            lines: Lines::new(text),
            diags: Vec::new(),
        }
    }

    fn pos(&self, span: &Range<usize>) -> Position {
        self.lines.position(span.start)
    }

    fn report(
        &mut self,
        code: &str,
        at: Range<usize>,
        who: Option<Who<'_>>,
        field: Option<&str>,
        mut message: String,
    ) {
        let position = self.pos(&at);
        let partner = who.and_then(|w| w.domain);
        if let Some(w) = who.filter(|w| w.domain.is_none() && !message.contains("partner #")) {
            // No domain to name the partner by: say which one it is.
            message.push_str(&format!(" ({})", w.label()));
        }
        self.diags.push(Diagnostic {
            code: code.to_string(),
            severity: Severity::Error,
            message,
            file: self.file.to_string(),
            position,
            partner: partner.map(str::to_string),
            field: field.map(str::to_string),
        });
    }

    fn unknown_key(&mut self, key: &Key<'_>, known: &[&str], who: Option<Who<'_>>, place: &str) {
        let name = key_str(key);
        let hint = match suggest(name, known) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("expected one of: {}", known.join(", ")),
        };
        let message = format!("unknown key `{name}` {place}; {hint}");
        self.report("P2", key.span(), who, Some(name), message);
    }

    fn wrong_type(&mut self, v: &Value<'_>, expected: &str, who: Option<Who<'_>>, field: &str) {
        let message = format!(
            "`{field}` must be {expected}, found {}",
            v.get_ref().type_str()
        );
        self.report("P3", v.span(), who, Some(field), message);
    }

    fn document(&mut self, root: &DeTable<'_>) -> Loaded {
        let mut local = (
            Local::default(),
            TableSpans::new(Position { line: 1, column: 1 }),
        );
        let mut partners = Vec::new();
        for (key, value) in root.iter() {
            match key_str(key) {
                "local" => {
                    if let Some(l) = self.local(value) {
                        local = l;
                    }
                }
                "partner" => partners = self.partners(value),
                _ => self.unknown_key(key, TOP_KEYS, None, "at the top level"),
            }
        }
        let (partners, partner_spans) = partners.into_iter().unzip();
        Loaded {
            set: PartnerSet {
                local: local.0,
                partners,
            },
            spans: SourceMap {
                file: self.file.to_string(),
                local: local.1,
                partners: partner_spans,
            },
        }
    }

    /// `[local]`: optional, but its keys are checked like everyone else's.
    fn local(&mut self, value: &Value<'_>) -> Option<(Local, TableSpans)> {
        let Some(table) = value.get_ref().as_table() else {
            self.wrong_type(value, "a table `[local]`", None, "local");
            return None;
        };
        let mut spans = TableSpans::new(self.pos(&value.span()));
        let mut local = Local::default();
        for (key, v) in table.iter() {
            let name = key_str(key);
            let Some(field) = LOCAL_KEYS.iter().copied().find(|k| *k == name) else {
                self.unknown_key(key, LOCAL_KEYS, None, "in [local]");
                continue;
            };
            spans.fields.insert(field, self.pos(&key.span()));
            if let Some((list, items)) = self.strings(v, None, field) {
                spans.items.insert(field, items);
                match field {
                    "domains" => local.domains = list.iter().map(|d| d.to_lowercase()).collect(),
                    _ => local.users = list,
                }
            }
        }
        Some((local, spans))
    }

    /// `[[partner]]`: an array of tables, each loaded on its own so that the
    /// problems of every partner are reported.
    fn partners(&mut self, value: &Value<'_>) -> Vec<(Partner, TableSpans)> {
        let Some(array) = value.get_ref().as_array() else {
            self.wrong_type(value, "an array of tables `[[partner]]`", None, "partner");
            return Vec::new();
        };
        let mut partners = Vec::new();
        for (i, item) in array.iter().enumerate() {
            let who = Who {
                domain: None,
                index: i + 1,
            };
            let Some(table) = item.get_ref().as_table() else {
                self.wrong_type(item, "a table", Some(who), "partner");
                continue;
            };
            let domain = primary_domain(table);
            let who = Who {
                domain: domain.as_deref(),
                index: i + 1,
            };
            if let Some(p) = self.partner(table, self.pos(&item.span()), item.span(), who) {
                partners.push(p);
            }
        }
        partners
    }

    fn partner(
        &mut self,
        table: &DeTable<'_>,
        at: Position,
        span: Range<usize>,
        who: Who<'_>,
    ) -> Option<(Partner, TableSpans)> {
        let before = self.diags.len();
        let mut spans = TableSpans::new(at);
        let mut draft = Draft::default();
        for (key, v) in table.iter() {
            let name = key_str(key);
            let Some(field) = PARTNER_KEYS.iter().copied().find(|k| *k == name) else {
                self.unknown_key(key, PARTNER_KEYS, Some(who), &format!("in {}", who.label()));
                continue;
            };
            spans.fields.insert(field, self.pos(&key.span()));
            self.partner_field(&mut draft, &mut spans, field, v, who);
        }
        for field in REQUIRED_PARTNER_KEYS {
            if !spans.fields.contains_key(field) {
                let message = format!("{} has no `{field}` (required)", who.label());
                self.report("P5", span.clone(), Some(who), Some(field), message);
            }
        }
        if self.diags.len() > before {
            return None;
        }
        draft.build().map(|p| (p, spans))
    }

    /// Reads one known partner field into the draft; a bad value is reported
    /// and left unset.
    fn partner_field(
        &mut self,
        draft: &mut Draft,
        spans: &mut TableSpans,
        field: &'static str,
        v: &Value<'_>,
        who: Who<'_>,
    ) {
        let w = Some(who);
        match field {
            "domain" => draft.domain = self.string(v, w, field).map(|d| d.to_lowercase()),
            "description" => draft.description = self.string(v, w, field),
            "additional-domains" => {
                if let Some((list, items)) = self.strings(v, w, field) {
                    spans.items.insert(field, items);
                    draft.additional_domains = list.iter().map(|d| d.to_lowercase()).collect();
                }
            }
            "type" => draft.partner_type = self.choice(v, w, field, PARTNER_TYPES),
            "tls" => draft.tls = self.choice(v, w, field, SETTINGS),
            "sasl" => draft.sasl = self.choice(v, w, field, SETTINGS),
            "dialback" => draft.dialback = self.boolean(v, w, field),
            "proxy-fqdn" => draft.proxy_fqdn = self.string(v, w, field).map(|d| d.to_lowercase()),
            "connection-limit" => draft.connection_limit = self.limit(v, w, field),
            _ => draft.keep_alive = self.boolean(v, w, field).unwrap_or(false),
        }
    }

    fn string(&mut self, v: &Value<'_>, who: Option<Who<'_>>, field: &str) -> Option<String> {
        match v.get_ref().as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong_type(v, "a string", who, field);
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value<'_>, who: Option<Who<'_>>, field: &str) -> Option<bool> {
        let b = v.get_ref().as_bool();
        if b.is_none() {
            self.wrong_type(v, "a boolean (true or false)", who, field);
        }
        b
    }

    /// A list of strings with the position of each; every bad element is
    /// reported, not just the first.
    fn strings(
        &mut self,
        v: &Value<'_>,
        who: Option<Who<'_>>,
        field: &str,
    ) -> Option<(Vec<String>, Vec<Position>)> {
        let Some(array) = v.get_ref().as_array() else {
            self.wrong_type(v, "a list of strings", who, field);
            return None;
        };
        let mut list = Vec::new();
        let mut items = Vec::new();
        let mut ok = true;
        for item in array.iter() {
            match item.get_ref().as_str() {
                Some(s) => {
                    list.push(s.to_string());
                    items.push(self.pos(&item.span()));
                }
                None => {
                    self.wrong_type(item, "a list of strings", who, field);
                    ok = false;
                }
            }
        }
        ok.then_some((list, items))
    }

    fn choice<T: Copy>(
        &mut self,
        v: &Value<'_>,
        who: Option<Who<'_>>,
        field: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        let expected = format!("one of {}", names.join(", "));
        let Some(raw) = v.get_ref().as_str() else {
            self.wrong_type(v, &format!("a string ({expected})"), who, field);
            return None;
        };
        let found = parse_choice(raw, choices);
        if found.is_none() {
            let message = format!("unknown value \"{raw}\" for `{field}`; expected {expected}");
            self.report("P4", v.span(), who, Some(field), message);
        }
        found
    }

    /// `connection-limit`: a positive integer that fits in `u32`. Zero would
    /// forbid every stream, which is never what an administrator means.
    fn limit(&mut self, v: &Value<'_>, who: Option<Who<'_>>, field: &str) -> Option<u32> {
        let Some(int) = v.get_ref().as_integer() else {
            self.wrong_type(v, "a positive integer", who, field);
            return None;
        };
        let parsed = i128::from_str_radix(int.as_str(), int.radix()).ok();
        match parsed
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
        {
            Some(n) => Some(n),
            None => {
                let message = format!(
                    "`{field}` = {int} is out of range; expected 1 to {}",
                    u32::MAX
                );
                self.report("P6", v.span(), who, Some(field), message);
                None
            }
        }
    }
}

/// The partner's primary domain if it is a string, so that diagnostics about
/// its other fields can name it.
fn primary_domain(table: &DeTable<'_>) -> Option<String> {
    let v = table.get("domain")?;
    v.get_ref().as_str().map(str::to_lowercase)
}

/// Kebab spelling or the PowerShell one (the same without hyphens), any case.
fn parse_choice<T: Copy>(raw: &str, choices: &[(&str, T)]) -> Option<T> {
    let lower = raw.to_ascii_lowercase();
    choices
        .iter()
        .find(|(name, _)| lower == *name || lower == name.replace('-', ""))
        .map(|(_, value)| *value)
}

/// The known key closest to a misspelt one (snake_case, case, a typo or two).
fn suggest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let normal = name.to_ascii_lowercase().replace('_', "-");
    known
        .iter()
        .map(|k| (edit_distance(&normal, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance; names are short, so the quadratic cost is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (prev + cost).min(row[j] + 1).min(row[j + 1] + 1);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// A partner whose fields are being read; `build` succeeds once every
/// required field is there.
#[derive(Default)]
struct Draft {
    domain: Option<String>,
    description: Option<String>,
    additional_domains: Vec<String>,
    partner_type: Option<PartnerType>,
    tls: Option<Setting>,
    sasl: Option<Setting>,
    dialback: Option<bool>,
    proxy_fqdn: Option<String>,
    connection_limit: Option<u32>,
    keep_alive: bool,
}

impl Draft {
    fn build(self) -> Option<Partner> {
        Some(Partner {
            domain: self.domain?,
            description: self.description,
            additional_domains: self.additional_domains,
            partner_type: self.partner_type?,
            negotiation: Negotiation::new(self.tls?, self.sasl?, self.dialback?),
            proxy_fqdn: self.proxy_fqdn,
            connection_limit: self.connection_limit,
            keep_alive: self.keep_alive,
        })
    }
}
