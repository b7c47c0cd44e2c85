//! Printing a partner set the way Lync / Skype for Business spells it: the
//! `New-CsXmppAllowedPartner` commands that recreate it, and (for round
//! trips and fixtures) what `Get-CsXmppAllowedPartner | Format-List` and a
//! proper `Export-Csv` print for it.

use std::fmt::Write as _;

use crate::partner::{Partner, PartnerSet, PartnerType, Setting};

/// The PowerShell spelling of a negotiation setting.
pub fn setting(s: Setting) -> &'static str {
    match s {
        Setting::Required => "Required",
        Setting::Optional => "Optional",
        Setting::NotSupported => "NotSupported",
    }
}

/// The PowerShell spelling of a partner type.
pub fn partner_type(t: PartnerType) -> &'static str {
    match t {
        PartnerType::Federated => "Federated",
        PartnerType::PublicVerified => "PublicVerified",
        PartnerType::PublicUnverified => "PublicUnverified",
    }
}

/// A PowerShell literal string: single quotes, a quote doubled. Curly
/// quotes count as quotes in PowerShell too, so they are doubled as well.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn boolean(b: bool) -> &'static str {
    if b { "$true" } else { "$false" }
}

/// One `New-CsXmppAllowedPartner` command recreating `p`, every setting
/// spelled out (the cmdlet's defaults are not assumed).
pub fn new_command(p: &Partner) -> String {
    let mut c = format!("New-CsXmppAllowedPartner -Identity {}", quote(&p.domain));
    if !p.additional_domains.is_empty() {
        let list: Vec<String> = p.additional_domains.iter().map(|d| quote(d)).collect();
        let _ = write!(c, " -AdditionalDomains @{{Add={}}}", list.join(","));
    }
    if let Some(d) = &p.description {
        let _ = write!(c, " -Description {}", quote(d));
    }
    let n = p.negotiation;
    let _ = write!(
        c,
        " -PartnerType {} -TlsNegotiation {} -SaslNegotiation {} -SupportDialbackNegotiation {}",
        partner_type(p.partner_type),
        setting(n.tls),
        setting(n.sasl),
        boolean(n.dialback)
    );
    if let Some(f) = &p.proxy_fqdn {
        let _ = write!(c, " -ProxyFqdn {}", quote(f));
    }
    if let Some(l) = p.connection_limit {
        let _ = write!(c, " -ConnectionLimit {l}");
    }
    let _ = write!(c, " -EnableKeepAlive {}", boolean(p.keep_alive));
    c
}

/// The commands recreating every partner of `set`, after a comment naming
/// `source`.
pub fn new_commands(set: &PartnerSet, source: &str) -> String {
    let mut out = format!(
        "# The XMPP allowed partners of {source} ({} partner(s)), for the Skype for Business\n\
         # Server Management Shell. Written by `s2spec export-lync`.\n",
        set.partners.len()
    );
    for p in &set.partners {
        out.push_str(&new_command(p));
        out.push('\n');
    }
    out
}

fn list_value(domains: &[String]) -> String {
    format!("{{{}}}", domains.join(", "))
}

/// What `Get-CsXmppAllowedPartner | Format-List` prints for `set` with
/// `$FormatEnumerationLimit = -1` (lists in full).
pub fn format_list(set: &PartnerSet) -> String {
    let mut out = String::new();
    for p in &set.partners {
        let n = p.negotiation;
        let rows = [
            ("Identity", p.domain.clone()),
            ("AdditionalDomains", list_value(&p.additional_domains)),
            (
                "ConnectionLimit",
                p.connection_limit
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
            ),
            ("Description", p.description.clone().unwrap_or_default()),
            ("EnableKeepAlive", title(p.keep_alive)),
            ("PartnerType", partner_type(p.partner_type).to_string()),
            ("ProxyFqdn", p.proxy_fqdn.clone().unwrap_or_default()),
            ("SaslNegotiation", setting(n.sasl).to_string()),
            ("SupportDialbackNegotiation", title(n.dialback)),
            ("TlsNegotiation", setting(n.tls).to_string()),
            ("Domain", p.domain.clone()),
        ];
        out.push('\n');
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<26} : {v}");
        }
    }
    out.push('\n');
    out
}

fn title(b: bool) -> String {
    if b { "True" } else { "False" }.to_string()
}

fn csv_cell(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// What a proper `Export-Csv` writes for `set`: the list joined with
/// commas (`Select-Object *, @{n='AdditionalDomains';e={$_.AdditionalDomains
/// -join ','}} -ExcludeProperty AdditionalDomains`), `-NoTypeInformation`.
pub fn csv(set: &PartnerSet) -> String {
    let header = [
        "Identity",
        "AdditionalDomains",
        "ConnectionLimit",
        "Description",
        "EnableKeepAlive",
        "PartnerType",
        "ProxyFqdn",
        "SaslNegotiation",
        "SupportDialbackNegotiation",
        "TlsNegotiation",
        "Domain",
    ];
    let mut out: String = header
        .iter()
        .map(|h| csv_cell(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for p in &set.partners {
        let n = p.negotiation;
        let cells = [
            p.domain.clone(),
            p.additional_domains.join(","),
            p.connection_limit
                .map(|l| l.to_string())
                .unwrap_or_default(),
            p.description.clone().unwrap_or_default(),
            title(p.keep_alive),
            partner_type(p.partner_type).to_string(),
            p.proxy_fqdn.clone().unwrap_or_default(),
            setting(n.sasl).to_string(),
            title(n.dialback),
            setting(n.tls).to_string(),
            p.domain.clone(),
        ];
        out.push_str(
            &cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell_literals_double_their_quotes() {
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }
}
