//! Lync / Skype for Business partner lists: reading what
//! `Get-CsXmppAllowedPartner` prints (`Format-List` text or `Export-Csv`)
//! into a partner set (`import`), and printing the
//! `New-CsXmppAllowedPartner` commands that recreate one (`export`).
//! Pure parsers and printers over [`crate::partner::PartnerSet`].

pub mod export;
pub mod import;

/// A partner-set field by its file spelling, and the PowerShell parameter
/// (and `Get-CsXmppAllowedPartner` property) that holds it.
pub const PARAMETERS: &[(&str, &str)] = &[
    ("domain", "Domain"),
    ("additional-domains", "AdditionalDomains"),
    ("description", "Description"),
    ("type", "PartnerType"),
    ("tls", "TlsNegotiation"),
    ("sasl", "SaslNegotiation"),
    ("dialback", "SupportDialbackNegotiation"),
    ("proxy-fqdn", "ProxyFqdn"),
    ("connection-limit", "ConnectionLimit"),
    ("keep-alive", "EnableKeepAlive"),
];

/// The PowerShell name of a partner-set field (the field itself if unknown).
pub fn parameter_of(field: &str) -> &str {
    PARAMETERS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(field, |(_, p)| p)
}
