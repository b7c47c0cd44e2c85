//! The probe's output: a text report for the administrator, JSON
//! (docs/probe.md), and the recommended configuration as a partner-set
//! entry and as the `New-CsXmppAllowedPartner` command.

use std::fmt::Write as _;

use serde::Serialize;

use super::infer::{Inference, POLICY, Prediction, TrialResult};
use super::observe::{Observed, Offer};
use crate::partner::{Negotiation, Setting};

/// Everything one probe produced.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub domain: String,
    pub connect: String,
    pub ours: String,
    pub listen: String,
    pub observed: Observed,
    pub inference: Inference,
}

/// One row of the JSON `configurations` array.
#[derive(Debug, Serialize)]
struct ConfigJson<'a> {
    config: String,
    inbound: &'static str,
    outbound: &'static str,
    why: String,
    why_inbound: &'a str,
    why_outbound: &'a str,
}

#[derive(Debug, Serialize)]
struct Json<'a> {
    domain: &'a str,
    ours: &'a str,
    policy: String,
    observed: &'a Observed,
    inferred: Inferred<'a>,
    configurations: Vec<ConfigJson<'a>>,
    recommended: Option<String>,
    partner_entry: Option<String>,
    powershell: Option<String>,
}

#[derive(Debug, Serialize)]
struct Inferred<'a> {
    receiving: Vec<String>,
    receiving_summary: &'a str,
    initiating: Vec<String>,
    initiating_summary: &'a str,
}

/// The JSON document of docs/probe.md.
pub fn json(r: &ProbeReport) -> String {
    let inf = &r.inference;
    let doc = Json {
        domain: &r.domain,
        ours: &r.ours,
        policy: POLICY.to_string(),
        observed: &r.observed,
        inferred: Inferred {
            receiving: inf.receiving.candidates.iter().map(|n| n.code()).collect(),
            receiving_summary: &inf.receiving.summary,
            initiating: inf.initiating.candidates.iter().map(|n| n.code()).collect(),
            initiating_summary: &inf.initiating.summary,
        },
        configurations: inf
            .configurations
            .iter()
            .map(|c| ConfigJson {
                config: c.config.code(),
                inbound: c.inbound.label(),
                outbound: c.outbound.label(),
                why: format!("inbound: {} outbound: {}", c.inbound.why, c.outbound.why),
                why_inbound: &c.inbound.why,
                why_outbound: &c.outbound.why,
            })
            .collect(),
        recommended: inf.recommended.map(Negotiation::code),
        partner_entry: inf.recommended.map(|n| partner_entry(&r.domain, n)),
        powershell: inf.recommended.map(|n| powershell(&r.domain, n)),
    };
    // Plain data of strings, numbers and enums: serialising cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The recommended configuration as a `[[partner]]` entry of a partner-set file.
pub fn partner_entry(domain: &str, n: Negotiation) -> String {
    format!(
        "[[partner]]\ndomain = \"{domain}\"\ntype = \"federated\"\ntls = \"{}\"\nsasl = \"{}\"\n\
         dialback = {}\n",
        n.tls.as_str(),
        n.sasl.as_str(),
        n.dialback
    )
}

fn ps(s: Setting) -> &'static str {
    match s {
        Setting::Required => "Required",
        Setting::Optional => "Optional",
        Setting::NotSupported => "NotSupported",
    }
}

/// The same as the Lync / Skype for Business cmdlet.
pub fn powershell(domain: &str, n: Negotiation) -> String {
    format!(
        "New-CsXmppAllowedPartner -Identity \"{domain}\" -PartnerType Federated \
         -TlsNegotiation {} -SaslNegotiation {} -SupportDialbackNegotiation ${}",
        ps(n.tls),
        ps(n.sasl),
        n.dialback
    )
}

fn offer(o: &Offer) -> String {
    let mut s = match (o.offered, o.accepted) {
        (false, _) => "not offered".to_string(),
        (true, Some(true)) => "offered, accepted".to_string(),
        (true, Some(false)) => "offered, refused".to_string(),
        (true, None) => "offered, not tried conclusively".to_string(),
    };
    if let Some(d) = &o.detail {
        let _ = write!(s, " ({d})");
    }
    s
}

fn result(r: &TrialResult) -> String {
    match r {
        TrialResult::Authenticated(m) => m.as_str().to_string(),
        TrialResult::Refused => "refused".to_string(),
        TrialResult::Inconclusive(why) => format!("inconclusive: {why}"),
    }
}

fn line(out: &mut String, label: &str, text: impl AsRef<str>) {
    let _ = writeln!(out, "  {label:<20}{}", text.as_ref());
}

fn short(p: &Prediction) -> String {
    match p.outcome {
        Some(_) => p.label().to_string(),
        None => format!(
            "unknown ({})",
            p.possible
                .iter()
                .map(|o| match o {
                    crate::oracle::Outcome::Authenticated(m) => m.as_str().to_string(),
                    crate::oracle::Outcome::Refused => "refused".to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        ),
    }
}

/// The text report.
pub fn text(r: &ProbeReport) -> String {
    let o = &r.observed;
    let inf = &r.inference;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Probe of {} at {} as {} (listening at {})\n",
        r.domain, r.connect, r.ours, r.listen
    );
    out.push_str("As receiving server (we connected to it):\n");
    line(
        &mut out,
        "STARTTLS",
        match o.starttls {
            Some(super::infer::TlsOffer::Required) => "offered, required",
            Some(super::infer::TlsOffer::Optional) => "offered, optional",
            Some(super::infer::TlsOffer::NotOffered) => "not offered",
            None => "unknown (no features seen)",
        },
    );
    if let Some(v) = &o.tls_version {
        line(&mut out, "TLS version", v);
    }
    if let Some(c) = &o.certificate {
        line(&mut out, "certificate", &c.summary);
        let ids: Vec<String> = c.identities.iter().map(ToString::to_string).collect();
        line(
            &mut out,
            "identities",
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            },
        );
        line(
            &mut out,
            "chain sent",
            format!("{} certificate(s)", c.chain_len),
        );
    }
    line(&mut out, "SASL EXTERNAL", offer(&o.external));
    line(&mut out, "dialback over TLS", offer(&o.dialback_tls));
    line(&mut out, "dialback over TCP", offer(&o.dialback_tcp));
    for t in &o.as_receiving {
        line(
            &mut out,
            &format!("we as {}", t.ours),
            match &t.stopped {
                Some(s) if !matches!(t.result, TrialResult::Inconclusive(_)) => {
                    format!("{} ({s})", result(&t.result))
                }
                _ => result(&t.result),
            },
        );
    }
    line(&mut out, "inferred", &inf.receiving.summary);
    out.push_str("\nAs initiating server (it connected back to us):\n");
    for t in &o.as_initiating {
        let mut s = result(&t.result);
        if t.connected {
            let mut how = vec![if t.starttls { "STARTTLS" } else { "no TLS" }.to_string()];
            if let Some(c) = &t.client_cert {
                how.push(format!("client certificate: {}", c.summary));
            }
            let _ = write!(s, " ({})", how.join("; "));
        }
        line(&mut out, &format!("we offer {}", t.ours), s);
    }
    line(&mut out, "SNI", &o.sni);
    line(&mut out, "inferred", &inf.initiating.summary);
    if !o.notes.is_empty() {
        out.push_str("\nNotes:\n");
        for n in &o.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    let _ = writeln!(
        out,
        "\nPredictions for our partner configuration of {} (policy {POLICY}):",
        r.domain
    );
    let _ = writeln!(
        out,
        "  {:<8}{:<34}outbound (we connect)",
        "config", "inbound (it connects)"
    );
    for c in &inf.configurations {
        let _ = writeln!(
            out,
            "  {:<8}{:<34}{}",
            c.config.code(),
            short(&c.inbound),
            short(&c.outbound)
        );
    }
    out.push_str("\nWhy:\n");
    for c in &inf.configurations {
        let _ = writeln!(out, "  {} in:  {}", c.config.code(), c.inbound.why);
        let _ = writeln!(out, "      out: {}", c.outbound.why);
    }
    match inf.recommended {
        Some(n) => {
            let c = inf.configurations.iter().find(|c| c.config == n);
            let _ = writeln!(
                out,
                "\nRecommended: {} (tls {}, sasl {}, dialback {}): {} inbound, {} outbound",
                n.code(),
                n.tls,
                n.sasl,
                n.dialback,
                c.map_or("?", |c| c.inbound.label()),
                c.map_or("?", |c| c.outbound.label()),
            );
            let _ = writeln!(out, "\n{}", partner_entry(&r.domain, n));
            let _ = writeln!(out, "{}", powershell(&r.domain, n));
        }
        None => out.push_str(
            "\nRecommended: none: no configuration is certain to federate in both directions.\n",
        ),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell_uses_the_cmdlet_spellings() {
        let n = Negotiation::from_code("RN1").unwrap();
        assert_eq!(
            powershell("fabrikam.test", n),
            "New-CsXmppAllowedPartner -Identity \"fabrikam.test\" -PartnerType Federated \
             -TlsNegotiation Required -SaslNegotiation NotSupported -SupportDialbackNegotiation $true"
        );
    }

    #[test]
    fn the_partner_entry_loads_and_validates() {
        let n = Negotiation::from_code("OO1").unwrap();
        let text = format!(
            "[local]\ndomains = [\"ours.test\"]\nusers = [\"alice\"]\n\n{}",
            partner_entry("fabrikam.test", n)
        );
        let loaded = crate::partner::load_str(&text, "probe.toml").unwrap();
        let p = &loaded.set.partners[0];
        assert_eq!(p.negotiation, n);
        assert!(
            crate::partner::validate(&loaded)
                .iter()
                .all(|d| d.severity != crate::partner::Severity::Error)
        );
    }
}
