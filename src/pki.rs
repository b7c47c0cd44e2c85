//! The harness's own PKI (SPEC §5): a root CA, an intermediate CA signed by it,
//! and for any domain every certificate variant a simulated peer may present.
//!
//! Everything is minted in memory with rcgen. Leaves are cached per
//! (domain, variant, key type) inside one [`Pki`], so a scenario that asks twice
//! gets the same certificate. CA keys are always ECDSA P-256; leaf keys are
//! ECDSA P-256 or RSA-2048 ([`KeyType`]).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PKCS_RSA_SHA256, PublicKeyData,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

/// File names of the CA material in a certificate directory (`s2spec certs`).
pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const INTERMEDIATE_CERT_FILE: &str = "intermediate.pem";
pub const INTERMEDIATE_KEY_FILE: &str = "intermediate.key";

/// id-on-xmppAddr (RFC 6120 §13.7.1.4).
pub const OID_XMPP_ADDR: &str = "1.3.6.1.5.5.7.8.5";
/// id-on-dnsSRV, the SRVName otherName (RFC 4985).
pub const OID_SRV_NAME: &str = "1.3.6.1.5.5.7.8.7";

// Validity windows. Leaves start a day in the past so clock skew between the
// harness and a target never turns `valid` into `not-yet-valid`.
const ROOT_DAYS: i64 = 3650;
const INTERMEDIATE_DAYS: i64 = 1825;
const LEAF_DAYS: i64 = 365;
const BACKDATE_DAYS: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("invalid domain {domain:?}: {reason}")]
    InvalidDomain { domain: String, reason: String },
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// CA material that cannot be used; `what` names the file (e.g. `ca.key`).
    #[error("{what}: {reason}")]
    BadCa { what: String, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn bad_ca(what: &str, reason: impl fmt::Display) -> PkiError {
    PkiError::BadCa {
        what: what.to_owned(),
        reason: reason.to_string(),
    }
}

/// The certificate variants of SPEC §5 a peer can present for its domain.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CertVariant {
    /// SAN dNSName = domain and SRV-ID `_xmpp-server.<domain>`; chains to the root.
    Valid,
    /// SAN holds only an id-on-xmppAddr otherName (UTF8String) = domain.
    XmppAddrOnly,
    /// SAN holds only an SRVName otherName (IA5String) `_xmpp-server.<domain>`.
    SrvIdOnly,
    /// SAN holds only a wildcard dNSName, see [`wildcard_name`].
    Wildcard,
    /// SAN dNSName and CN `wrong-name.invalid`: a good chain for somebody
    /// else, wrong in every identity.
    WrongName,
    /// SAN dNSName `wrong-name.invalid` while the CN still names the domain:
    /// RFC 6125 §6.4.4 forbids the CN fallback once a DNS-ID is present.
    SanMismatchCnMatch,
    /// Like `valid`, but its validity ended 30 days ago.
    Expired,
    /// Like `valid`, but its validity starts in 30 days.
    NotYetValid,
    /// Like `valid`, but self-signed (not issued by any CA).
    SelfSigned,
    /// Like `valid`, but issued by a CA that no trust store holds.
    UntrustedCa,
    /// No SAN at all: the identity is only in the subject CN.
    CnOnly,
    /// The peer presents no certificate: minting yields `None`.
    NoClientCert,
    /// Like `valid`, but extended key usage serverAuth only (no clientAuth):
    /// the 2026 public-CA profile. Whether it may authenticate an initiating
    /// server is a policy question (SPEC §5).
    ServerAuthOnly,
    /// SAN holds both a dNSName and an id-on-xmppAddr for the domain.
    XmppAddrAndDns,
    /// Like `valid`, but the leaf is sent without the intermediate it needs.
    MissingIntermediate,
    /// Like `valid`, but issued by an intermediate CA whose validity has ended.
    ExpiredIntermediate,
}

impl CertVariant {
    pub const ALL: [CertVariant; 16] = [
        CertVariant::Valid,
        CertVariant::XmppAddrOnly,
        CertVariant::SrvIdOnly,
        CertVariant::Wildcard,
        CertVariant::WrongName,
        CertVariant::Expired,
        CertVariant::NotYetValid,
        CertVariant::SelfSigned,
        CertVariant::UntrustedCa,
        CertVariant::CnOnly,
        CertVariant::NoClientCert,
        CertVariant::ServerAuthOnly,
        CertVariant::SanMismatchCnMatch,
        CertVariant::XmppAddrAndDns,
        CertVariant::MissingIntermediate,
        CertVariant::ExpiredIntermediate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertVariant::Valid => "valid",
            CertVariant::XmppAddrOnly => "xmpp-addr-only",
            CertVariant::SrvIdOnly => "srv-id-only",
            CertVariant::Wildcard => "wildcard",
            CertVariant::WrongName => "wrong-name",
            CertVariant::Expired => "expired",
            CertVariant::NotYetValid => "not-yet-valid",
            CertVariant::SelfSigned => "self-signed",
            CertVariant::UntrustedCa => "untrusted-ca",
            CertVariant::CnOnly => "cn-only",
            CertVariant::NoClientCert => "no-client-cert",
            CertVariant::ServerAuthOnly => "server-auth-only",
            CertVariant::SanMismatchCnMatch => "san-mismatch-cn-match",
            CertVariant::XmppAddrAndDns => "xmpp-addr-and-dns",
            CertVariant::MissingIntermediate => "missing-intermediate",
            CertVariant::ExpiredIntermediate => "expired-intermediate",
        }
    }

    /// Whether a certificate of this variant passes SPEC §5 for `domain`: it
    /// chains to the trusted root, is within its validity, and carries a
    /// reference identifier for `domain`. This is what the harness expects a
    /// correct target to conclude (e.g. whether SASL EXTERNAL may succeed).
    /// `server-auth-only` passes: its chain and names are sound, and whether
    /// its missing clientAuth purpose matters is the policy's question.
    pub fn passes_for(self, domain: &str) -> bool {
        match self {
            CertVariant::Valid
            | CertVariant::XmppAddrOnly
            | CertVariant::SrvIdOnly
            | CertVariant::ServerAuthOnly
            | CertVariant::XmppAddrAndDns => true,
            CertVariant::Wildcard => wildcard_matches(domain),
            _ => false,
        }
    }
}

impl fmt::Display for CertVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertVariant {
    type Err = UnknownCertVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CertVariant::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCertVariant { name: s.to_owned() })
    }
}

/// A name that is no [`CertVariant`]; the message lists the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown certificate variant {name:?} (one of: {})",
    CertVariant::ALL.map(CertVariant::as_str).join(", ")
)]
pub struct UnknownCertVariant {
    pub name: String,
}

/// Key algorithm of a leaf.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA P-256 with SHA-256.
    #[default]
    Ecdsa,
    /// RSA-2048 with PKCS#1 v1.5 SHA-256 certificate signatures.
    Rsa,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wildcard dNSName the `wildcard` variant carries for `domain`.
///
/// A wildcard covers exactly one label and is only meaningful over a base of at
/// least two labels, so: for a domain of three or more labels
/// (`xmpp.fabrikam.test`) it is `*.<parent>` (`*.fabrikam.test`), which matches
/// the domain; for shorter domains (`fabrikam.test`) it is `*.<domain>`
/// (`*.fabrikam.test`), which covers sub-domains only and must NOT match the
/// domain itself (RFC 6125 §6.4.3). Peers that should pass with a wildcard
/// certificate therefore need a sub-domain such as `xmpp.fabrikam.test`.
pub fn wildcard_name(domain: &str) -> String {
    let domain = domain.to_ascii_lowercase();
    match domain.split_once('.') {
        Some((_, parent)) if wildcard_matches(&domain) => format!("*.{parent}"),
        _ => format!("*.{domain}"),
    }
}

/// Whether the `wildcard` variant's name matches `domain` (≥ 3 labels).
pub fn wildcard_matches(domain: &str) -> bool {
    domain.split('.').count() >= 3
}

/// Check that `domain` is a DNS name the harness can put into certificates:
/// ASCII letters, digits and hyphens, labels of 1–63 characters not starting or
/// ending with a hyphen, at most 253 characters, no trailing dot.
pub fn check_domain(domain: &str) -> Result<(), PkiError> {
    let bad = |reason: &str| PkiError::InvalidDomain {
        domain: domain.to_owned(),
        reason: reason.to_owned(),
    };
    if domain.is_empty() {
        return Err(bad("empty"));
    }
    if domain.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(bad("empty label"));
        }
        if label.len() > 63 {
            return Err(bad("label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(
                "only ASCII letters, digits, '-' and '.' are allowed (use the A-label of IDNs)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with '-'"));
        }
    }
    if domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("looks like an IP address, not a domain"));
    }
    Ok(())
}

/// A minted end-entity certificate with its key.
#[derive(Debug)]
pub struct Leaf {
    /// The leaf first, then the certificates a verifier needs to reach a root:
    /// the intermediate for CA-issued variants, the untrusted CA for
    /// `untrusted-ca`, nothing more for `self-signed`.
    pub chain_der: Vec<CertificateDer<'static>>,
    /// The private key, PKCS#8.
    pub key_der: PrivateKeyDer<'static>,
    /// The leaf alone, PEM.
    pub cert_pem: String,
    /// `chain_der` as PEM, leaf first: what a server's certificate file holds.
    pub chain_pem: String,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
}

impl Clone for Leaf {
    fn clone(&self) -> Self {
        Leaf {
            chain_der: self.chain_der.clone(),
            key_der: self.key_der.clone_key(),
            cert_pem: self.cert_pem.clone(),
            chain_pem: self.chain_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

impl Leaf {
    /// The end-entity certificate.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.chain_der[0]
    }

    /// Load credentials that were not minted here (e.g. a target's own files):
    /// `chain_pem` holds the leaf first, `key_pem` a PKCS#8, PKCS#1 or SEC1 key.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Leaf, PkiError> {
        let chain_der = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad_ca("certificate", e))?;
        let Some(first) = chain_der.first() else {
            return Err(bad_ca("certificate", "no CERTIFICATE block"));
        };
        let cert_pem = pem_encode("CERTIFICATE", first);
        let key_der =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad_ca("key", e))?;
        Ok(Leaf {
            chain_der,
            key_der,
            cert_pem,
            chain_pem: chain_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        })
    }
}

fn pem_encode(tag: &str, der: &[u8]) -> String {
    // Neither rcgen nor pki-types exports a PEM encoder for arbitrary DER;
    // the format is trivial (RFC 7468: 64-column base64).
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

/// A CA: its certificate and the issuer (name + key) that signs children.
struct Ca {
    der: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
}

impl Ca {
    fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}

/// CA material as PEM text, the four files of a certificate directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPems {
    pub root_cert: String,
    pub root_key: String,
    pub intermediate_cert: String,
    pub intermediate_key: String,
}

type CacheKey = (String, CertVariant, KeyType);

/// Root CA, intermediate CA and a cache of minted leaves. Thread-safe.
pub struct Pki {
    root: Ca,
    intermediate: Ca,
    /// A second, never-trusted root for `untrusted-ca`, minted on first use.
    untrusted: Mutex<Option<Arc<Ca>>>,
    /// An intermediate signed by `root` whose validity has ended, for
    /// `expired-intermediate`, minted on first use.
    expired_intermediate: Mutex<Option<Arc<Ca>>>,
    cache: Mutex<HashMap<CacheKey, Arc<Leaf>>>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a usable map behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> OffsetDateTime {
    // Whole seconds: X.509 times carry no fractions.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

fn ca_params(cn: &str, path_len: u8, days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "s2spec");
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = now();
    params.not_before = now - Duration::days(BACKDATE_DAYS);
    params.not_after = now + Duration::days(days);
    params
}

fn new_root(cn: &str) -> Result<Ca, PkiError> {
    let params = ca_params(cn, 1, ROOT_DAYS);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok(Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        not_after: params.not_after,
        issuer: Issuer::new(params, key),
    })
}

fn generate_key(key_type: KeyType) -> Result<KeyPair, PkiError> {
    match key_type {
        KeyType::Ecdsa => Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?),
        KeyType::Rsa => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| PkiError::KeyGeneration(e.to_string()))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| PkiError::KeyGeneration(e.to_string()))?;
            let pkcs8 = PrivatePkcs8KeyDer::from(der.as_bytes());
            Ok(KeyPair::from_pkcs8_der_and_sign_algo(
                &pkcs8,
                &PKCS_RSA_SHA256,
            )?)
        }
    }
}

/// One entry of a subjectAltName extension.
enum San {
    Dns(String),
    XmppAddr(String),
    SrvName(String),
}

/// Minimal DER for the subjectAltName extension. rcgen's `SanType::OtherName`
/// encodes UTF8String only, but SRVName must be an IA5String (RFC 4985), so
/// every leaf's SAN is built here and rcgen's own SAN list stays empty (one
/// certificate must not carry two SAN extensions).
mod san_der {
    use super::San;

    // 1.3.6.1.5.5.7.8.5 and 1.3.6.1.5.5.7.8.7, DER-encoded OID contents.
    const XMPP_ADDR: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05];
    const SRV_NAME: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07];

    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    const UTF8_STRING: u8 = 0x0c;
    const IA5_STRING: u8 = 0x16;
    /// GeneralName otherName: [0] IMPLICIT, constructed.
    const OTHER_NAME: u8 = 0xa0;
    /// OtherName value: [0] EXPLICIT, constructed.
    const EXPLICIT_0: u8 = 0xa0;
    /// GeneralName dNSName: [2] IMPLICIT IA5String, primitive.
    const DNS_NAME: u8 = 0x82;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    fn other_name(oid: &[u8], value: Vec<u8>) -> Vec<u8> {
        let mut body = tlv(OID, oid);
        body.extend(tlv(EXPLICIT_0, &value));
        tlv(OTHER_NAME, &body)
    }

    /// The extnValue contents: `GeneralNames ::= SEQUENCE OF GeneralName`.
    pub(super) fn general_names(names: &[San]) -> Vec<u8> {
        let mut body = Vec::new();
        for name in names {
            body.extend(match name {
                San::Dns(n) => tlv(DNS_NAME, n.as_bytes()),
                San::XmppAddr(v) => other_name(XMPP_ADDR, tlv(UTF8_STRING, v.as_bytes())),
                San::SrvName(v) => other_name(SRV_NAME, tlv(IA5_STRING, v.as_bytes())),
            });
        }
        tlv(SEQUENCE, &body)
    }
}

/// The other domain `wrong-name` and `san-mismatch-cn-match` are issued for.
pub const WRONG_NAME: &str = "wrong-name.invalid";

fn san_for(domain: &str, variant: CertVariant) -> Vec<San> {
    let srv = || San::SrvName(format!("_xmpp-server.{domain}"));
    match variant {
        CertVariant::XmppAddrOnly => vec![San::XmppAddr(domain.to_owned())],
        CertVariant::SrvIdOnly => vec![srv()],
        CertVariant::Wildcard => vec![San::Dns(wildcard_name(domain))],
        CertVariant::WrongName | CertVariant::SanMismatchCnMatch => {
            vec![San::Dns(WRONG_NAME.to_owned())]
        }
        CertVariant::XmppAddrAndDns => {
            vec![
                San::Dns(domain.to_owned()),
                San::XmppAddr(domain.to_owned()),
            ]
        }
        CertVariant::CnOnly | CertVariant::NoClientCert => vec![],
        CertVariant::Valid
        | CertVariant::ServerAuthOnly
        | CertVariant::MissingIntermediate
        | CertVariant::ExpiredIntermediate
        | CertVariant::Expired
        | CertVariant::NotYetValid
        | CertVariant::SelfSigned
        | CertVariant::UntrustedCa => vec![San::Dns(domain.to_owned()), srv()],
    }
}

impl Pki {
    /// Mint a fresh root and intermediate CA.
    pub fn new() -> Result<Pki, PkiError> {
        let root = new_root("s2spec Root CA")?;
        let mut params = ca_params("s2spec Intermediate CA", 0, INTERMEDIATE_DAYS);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &root.issuer)?;
        let intermediate = Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        };
        Ok(Pki::with(root, intermediate))
    }

    fn with(root: Ca, intermediate: Ca) -> Pki {
        Pki {
            root,
            intermediate,
            untrusted: Mutex::new(None),
            expired_intermediate: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Use existing CA material. Checks that each key belongs to its
    /// certificate, that both are CA certificates and that the intermediate is
    /// signed by the root. Errors name the file (`ca.pem`, `intermediate.key`…).
    pub fn from_pems(pems: &CaPems) -> Result<Pki, PkiError> {
        let root = load_ca(&pems.root_cert, &pems.root_key, CA_CERT_FILE, CA_KEY_FILE)?;
        let intermediate = load_ca(
            &pems.intermediate_cert,
            &pems.intermediate_key,
            INTERMEDIATE_CERT_FILE,
            INTERMEDIATE_KEY_FILE,
        )?;
        let (_, root_x509) =
            x509_parser::parse_x509_certificate(&root.der).map_err(|e| bad_ca(CA_CERT_FILE, e))?;
        let (_, int_x509) = x509_parser::parse_x509_certificate(&intermediate.der)
            .map_err(|e| bad_ca(INTERMEDIATE_CERT_FILE, e))?;
        int_x509
            .verify_signature(Some(root_x509.public_key()))
            .map_err(|_| {
                bad_ca(
                    INTERMEDIATE_CERT_FILE,
                    format!("not signed by {CA_CERT_FILE}"),
                )
            })?;
        Ok(Pki::with(root, intermediate))
    }

    /// Load the CA material of a certificate directory. `Ok(None)` when none of
    /// the four files exists; an error when only some do or one is unusable.
    pub fn load_dir(dir: &Path) -> Result<Option<Pki>, PkiError> {
        let names = [
            CA_CERT_FILE,
            CA_KEY_FILE,
            INTERMEDIATE_CERT_FILE,
            INTERMEDIATE_KEY_FILE,
        ];
        let present: Vec<bool> = names.iter().map(|n| dir.join(n).exists()).collect();
        if present.iter().all(|p| !p) {
            return Ok(None);
        }
        if let Some(i) = present.iter().position(|p| !p) {
            let have: Vec<&str> = names
                .iter()
                .zip(&present)
                .filter(|(_, p)| **p)
                .map(|(n, _)| *n)
                .collect();
            return Err(PkiError::BadCa {
                what: dir.join(names[i]).display().to_string(),
                reason: format!(
                    "missing while {} exist (a CA needs all four files)",
                    have.join(", ")
                ),
            });
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| PkiError::Io { path, source })
        };
        let pems = CaPems {
            root_cert: read(CA_CERT_FILE)?,
            root_key: read(CA_KEY_FILE)?,
            intermediate_cert: read(INTERMEDIATE_CERT_FILE)?,
            intermediate_key: read(INTERMEDIATE_KEY_FILE)?,
        };
        Pki::from_pems(&pems).map(Some).map_err(|e| match e {
            PkiError::BadCa { what, reason } => PkiError::BadCa {
                what: dir.join(what).display().to_string(),
                reason,
            },
            e => e,
        })
    }

    /// The CA material as PEM (keys PKCS#8).
    pub fn to_pems(&self) -> CaPems {
        CaPems {
            root_cert: self.root.pem.clone(),
            root_key: self.root.key_pem(),
            intermediate_cert: self.intermediate.pem.clone(),
            intermediate_key: self.intermediate.key_pem(),
        }
    }

    /// The trust anchor every correct peer and target should trust.
    pub fn root_der(&self) -> &CertificateDer<'static> {
        &self.root.der
    }

    pub fn root_pem(&self) -> &str {
        &self.root.pem
    }

    pub fn intermediate_der(&self) -> &CertificateDer<'static> {
        &self.intermediate.der
    }

    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate.pem
    }

    fn expired_intermediate(&self) -> Result<Arc<Ca>, PkiError> {
        let mut slot = lock(&self.expired_intermediate);
        if let Some(ca) = slot.as_ref() {
            return Ok(ca.clone());
        }
        let mut params = ca_params("s2spec Expired Intermediate CA", 0, INTERMEDIATE_DAYS);
        let now = now();
        params.not_before = now - Duration::days(90);
        params.not_after = now - Duration::days(30);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.root.issuer)?;
        let ca = Arc::new(Ca {
            der: cert.der().clone(),
            pem: cert.pem(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        });
        *slot = Some(ca.clone());
        Ok(ca)
    }

    fn untrusted_ca(&self) -> Result<Arc<Ca>, PkiError> {
        let mut slot = lock(&self.untrusted);
        if let Some(ca) = slot.as_ref() {
            return Ok(ca.clone());
        }
        let ca = Arc::new(new_root("s2spec Untrusted CA")?);
        *slot = Some(ca.clone());
        Ok(ca)
    }

    /// Uses `leaf` (loaded from files, e.g. by `s2spec probe`) as the
    /// certificate of `variant` for `domain` instead of minting one.
    pub fn adopt_leaf(
        &self,
        domain: &str,
        variant: CertVariant,
        key_type: KeyType,
        leaf: Leaf,
    ) -> Result<(), PkiError> {
        check_domain(domain)?;
        let key = (domain.to_ascii_lowercase(), variant, key_type);
        lock(&self.cache).insert(key, Arc::new(leaf));
        Ok(())
    }

    /// The certificate of `variant` for `domain` (cached: the same `Arc` comes
    /// back for the same arguments). `Ok(None)` for `no-client-cert`.
    pub fn leaf(
        &self,
        domain: &str,
        variant: CertVariant,
        key_type: KeyType,
    ) -> Result<Option<Arc<Leaf>>, PkiError> {
        if variant == CertVariant::NoClientCert {
            return Ok(None);
        }
        check_domain(domain)?;
        let key = (domain.to_ascii_lowercase(), variant, key_type);
        if let Some(leaf) = lock(&self.cache).get(&key) {
            return Ok(Some(leaf.clone()));
        }
        // Mint outside the lock (RSA takes a while); if another thread won the
        // race, keep its leaf so callers always see one certificate per key.
        let leaf = Arc::new(self.mint(&key.0, variant, key_type)?);
        Ok(Some(lock(&self.cache).entry(key).or_insert(leaf).clone()))
    }

    fn mint(
        &self,
        domain: &str,
        variant: CertVariant,
        key_type: KeyType,
    ) -> Result<Leaf, PkiError> {
        let key = generate_key(key_type)?;
        let mut params = CertificateParams::default();
        // CN = domain for every leaf but `wrong-name` (wrong in every
        // identity), so `cn-only` differs only by its missing SAN.
        let mut dn = DistinguishedName::new();
        let cn = if variant == CertVariant::WrongName {
            WRONG_NAME
        } else {
            domain
        };
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if key_type == KeyType::Rsa {
            // For TLS 1.2 peers that still negotiate RSA key transport.
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        // S2S certificates serve both roles: receiving (server) and
        // initiating (client); `server-auth-only` is the public-CA profile
        // that drops the client role.
        params.extended_key_usages = if variant == CertVariant::ServerAuthOnly {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        } else {
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        };
        let now = now();
        (params.not_before, params.not_after) = match variant {
            CertVariant::Expired => (now - Duration::days(60), now - Duration::days(30)),
            CertVariant::NotYetValid => (now + Duration::days(30), now + Duration::days(60)),
            _ => (
                now - Duration::days(BACKDATE_DAYS),
                now + Duration::days(LEAF_DAYS),
            ),
        };
        let names = san_for(domain, variant);
        if !names.is_empty() {
            // Not critical: the subject (CN) is never empty here (RFC 5280 §4.2.1.6).
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 17],
                    san_der::general_names(&names),
                ));
        }
        let (cert, chain_rest) = match variant {
            CertVariant::SelfSigned => (params.self_signed(&key)?, vec![]),
            CertVariant::UntrustedCa => {
                let ca = self.untrusted_ca()?;
                params.use_authority_key_identifier_extension = true;
                clamp(&mut params, ca.not_after);
                (params.signed_by(&key, &ca.issuer)?, vec![ca.der.clone()])
            }
            CertVariant::ExpiredIntermediate => {
                // The leaf itself is current; only its issuer has expired.
                let ca = self.expired_intermediate()?;
                params.use_authority_key_identifier_extension = true;
                (params.signed_by(&key, &ca.issuer)?, vec![ca.der.clone()])
            }
            CertVariant::MissingIntermediate => {
                params.use_authority_key_identifier_extension = true;
                clamp(&mut params, self.intermediate.not_after);
                // Issued by the intermediate, but sent without it.
                (params.signed_by(&key, &self.intermediate.issuer)?, vec![])
            }
            _ => {
                params.use_authority_key_identifier_extension = true;
                if variant != CertVariant::Expired && variant != CertVariant::NotYetValid {
                    clamp(&mut params, self.intermediate.not_after);
                }
                (
                    params.signed_by(&key, &self.intermediate.issuer)?,
                    vec![self.intermediate.der.clone()],
                )
            }
        };
        let mut chain_der = vec![cert.der().clone()];
        chain_der.extend(chain_rest);
        let chain_pem = chain_der
            .iter()
            .map(|c| pem_encode("CERTIFICATE", c))
            .collect::<String>();
        Ok(Leaf {
            cert_pem: cert.pem(),
            chain_pem,
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            key_pem: key.serialize_pem(),
            chain_der,
        })
    }
}

/// A leaf should not outlive its issuer (a loaded CA may be close to expiry).
fn clamp(params: &mut CertificateParams, issuer_not_after: OffsetDateTime) {
    if params.not_after > issuer_not_after {
        params.not_after = issuer_not_after;
    }
}

fn load_ca(cert_pem: &str, key_pem: &str, cert_what: &str, key_what: &str) -> Result<Ca, PkiError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| bad_ca(cert_what, format!("no usable CERTIFICATE block ({e})")))?;
    let key = KeyPair::from_pem(key_pem)
        .map_err(|e| bad_ca(key_what, format!("no usable PKCS#8 private key ({e})")))?;
    let (_, x509) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad_ca(cert_what, e))?;
    if !x509.is_ca() {
        return Err(bad_ca(
            cert_what,
            "not a CA certificate (basicConstraints CA:FALSE)",
        ));
    }
    if x509.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(bad_ca(key_what, format!("does not belong to {cert_what}")));
    }
    let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())
        .map_err(|e| bad_ca(cert_what, e))?;
    let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| bad_ca(cert_what, e))?;
    Ok(Ca {
        pem: pem_encode("CERTIFICATE", &der),
        der: der.into_owned(),
        issuer,
        not_after,
    })
}
