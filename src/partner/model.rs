//! Plain data types of a partner configuration (SPEC §2).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A three-valued negotiation setting, used for both TLS and SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    Required,
    Optional,
    NotSupported,
}

impl Setting {
    pub const ALL: [Setting; 3] = [Setting::Required, Setting::Optional, Setting::NotSupported];

    /// The one-letter code used in case identifiers (SPEC §4.5): `R`, `O`, `N`.
    pub fn letter(self) -> char {
        match self {
            Setting::Required => 'R',
            Setting::Optional => 'O',
            Setting::NotSupported => 'N',
        }
    }

    pub fn from_letter(c: char) -> Option<Setting> {
        match c {
            'R' => Some(Setting::Required),
            'O' => Some(Setting::Optional),
            'N' => Some(Setting::NotSupported),
            _ => None,
        }
    }

    /// The kebab-case spelling used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::Required => "required",
            Setting::Optional => "optional",
            Setting::NotSupported => "not-supported",
        }
    }

    pub fn enabled(self) -> bool {
        self != Setting::NotSupported
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a partner's users may do with local users (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartnerType {
    Federated,
    PublicVerified,
    PublicUnverified,
}

impl PartnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerType::Federated => "federated",
            PartnerType::PublicVerified => "public-verified",
            PartnerType::PublicUnverified => "public-unverified",
        }
    }
}

impl fmt::Display for PartnerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The three negotiation settings of one side of a stream: a partner
/// configuration or a simulated peer's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Negotiation {
    pub tls: Setting,
    pub sasl: Setting,
    pub dialback: bool,
}

impl Negotiation {
    pub const fn new(tls: Setting, sasl: Setting, dialback: bool) -> Self {
        Negotiation {
            tls,
            sasl,
            dialback,
        }
    }

    /// All 18 combinations in the order of SPEC §4's table (row 1 first).
    pub fn all() -> impl Iterator<Item = Negotiation> {
        [Setting::Required, Setting::Optional, Setting::NotSupported]
            .into_iter()
            .flat_map(|sasl| {
                Setting::ALL.into_iter().flat_map(move |tls| {
                    [true, false]
                        .into_iter()
                        .map(move |dialback| Negotiation::new(tls, sasl, dialback))
                })
            })
    }

    /// The `<T><S><D>` code of case identifiers, e.g. `RO1`.
    pub fn code(self) -> String {
        format!(
            "{}{}{}",
            self.tls.letter(),
            self.sasl.letter(),
            if self.dialback { '1' } else { '0' }
        )
    }

    /// Parses a `<T><S><D>` code such as `ON1`.
    pub fn from_code(code: &str) -> Option<Negotiation> {
        let mut chars = code.chars();
        let tls = Setting::from_letter(chars.next()?)?;
        let sasl = Setting::from_letter(chars.next()?)?;
        let dialback = match chars.next()? {
            '1' => true,
            '0' => false,
            _ => return None,
        };
        chars
            .next()
            .is_none()
            .then_some(Negotiation::new(tls, sasl, dialback))
    }
}

/// One partner configuration (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    /// Primary domain, lower-case.
    pub domain: String,
    pub description: Option<String>,
    /// Additional domains, each listed explicitly (sub-domains are not implied).
    pub additional_domains: Vec<String>,
    pub partner_type: PartnerType,
    pub negotiation: Negotiation,
    /// Connect to this host instead of resolving the partner's SRV records.
    pub proxy_fqdn: Option<String>,
    /// Maximum simultaneous streams with this partner.
    pub connection_limit: Option<u32>,
    /// Whitespace keep-alives on idle streams.
    pub keep_alive: bool,
}

impl Partner {
    /// Every domain this partner speaks for: the primary one first.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.domain.as_str())
            .chain(self.additional_domains.iter().map(|d| d.as_str()))
    }

    /// Whether `domain` is one of this partner's domains. Sub-domains of a listed
    /// domain do not match: each must be listed (SPEC §2).
    pub fn serves(&self, domain: &str) -> bool {
        self.domains().any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// The `[local]` table: what the target serves itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Local {
    pub domains: Vec<String>,
    pub users: Vec<String>,
}

/// A target's whole configuration (SPEC §2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerSet {
    pub local: Local,
    pub partners: Vec<Partner>,
}

impl PartnerSet {
    /// The partner configuration covering `domain`, if any; a domain that matches
    /// none is not a partner and its streams are refused.
    pub fn partner_for(&self, domain: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.serves(domain))
    }

    pub fn is_local(&self, domain: &str) -> bool {
        self.local
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A position in a source file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One finding about a partner-set file: parse error (`P…`), validation error
/// (`E1`–`E3`) or warning (`W1`, `W2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Stable code, e.g. `E1`, `W2`, `P2`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub file: String,
    pub position: Position,
    /// Primary domain of the partner concerned, when there is one.
    pub partner: Option<String>,
    /// The field at fault, in its file spelling (e.g. `sasl`, `additional-domains`).
    pub field: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// `FILE:LINE:COL: CODE: message (partner DOMAIN, field FIELD)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.position.line, self.position.column, self.code, self.message
        )?;
        let mut extra = Vec::new();
        if let Some(p) = &self.partner {
            extra.push(format!("partner {p}"));
        }
        if let Some(field) = &self.field {
            extra.push(format!("field {field}"));
        }
        if !extra.is_empty() {
            write!(f, " ({})", extra.join(", "))?;
        }
        Ok(())
    }
}
