//! TLS for the simulated peers and the reference proxy: rustls 0.23 with the
//! ring provider, TLS 1.2 and 1.3 only (RFC 7590), no session resumption.
//!
//! Both sides verify the peer's certificate with *recording* verifiers: the
//! chain is checked by webpki, the verdict is stored in a [`Recorder`] for that
//! one connection, and the handshake completes anyway, so the XMPP layer can
//! decide (e.g. offer SASL EXTERNAL only for a good certificate, fall back to
//! dialback otherwise). Handshake signatures are still verified for real.
//! Names are checked by [`identity`], not by webpki, because webpki knows
//! dNSName only and XMPP also uses SRV-ID and XmppAddr.
//!
//! Build one config per connection: the recorder lives in the config, and
//! resumption is off in both directions because a resumed session would skip
//! the verifiers and leave the recorder empty.

pub mod identity;

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

pub use identity::{IdKind, IdentityReport, PresentedId, check_identity};

use crate::pki::Leaf;

/// ALPN protocol of direct TLS for S2S (XEP-0368).
pub const ALPN_XMPP_SERVER: &[u8] = b"xmpp-server";

/// The only protocol versions ever enabled (RFC 7590: nothing below TLS 1.2).
pub static PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// How TLS is entered on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `<starttls/>` on port 5269: no ALPN.
    StartTls,
    /// Direct TLS (XEP-0368): ALPN `xmpp-server`.
    DirectTls,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("trust anchor rejected: {0}")]
    BadTrustAnchor(String),
    #[error("verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("invalid server name {0:?}")]
    ServerName(String),
}

/// The webpki verdict on a peer's certificate chain (names excluded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainStatus {
    /// Chains to a trusted root and is within its validity.
    Valid,
    Expired,
    NotYetValid,
    /// Does not chain to a trusted root (self-signed, other CA, missing intermediate).
    UnknownIssuer,
    /// A certificate in the chain is not correctly signed by its issuer.
    BadSignature,
    /// The peer sent no certificate.
    NotPresented,
    /// Anything else webpki objected to (bad encoding, wrong EKU, …).
    Other(String),
}

impl fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainStatus::Valid => f.write_str("valid"),
            ChainStatus::Expired => f.write_str("expired"),
            ChainStatus::NotYetValid => f.write_str("not yet valid"),
            ChainStatus::UnknownIssuer => f.write_str("unknown issuer"),
            ChainStatus::BadSignature => f.write_str("bad signature"),
            ChainStatus::NotPresented => f.write_str("no certificate"),
            ChainStatus::Other(why) => write!(f, "rejected: {why}"),
        }
    }
}

impl ChainStatus {
    fn classify<T>(result: &Result<T, rustls::Error>) -> ChainStatus {
        let err = match result {
            Ok(_) => return ChainStatus::Valid,
            Err(rustls::Error::InvalidCertificate(e)) => e,
            Err(other) => return ChainStatus::Other(other.to_string()),
        };
        match err {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ChainStatus::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                ChainStatus::NotYetValid
            }
            CertificateError::UnknownIssuer => ChainStatus::UnknownIssuer,
            CertificateError::BadSignature => ChainStatus::BadSignature,
            // webpki checks the name only after the chain passed; names are ours to judge.
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                ChainStatus::Valid
            }
            other => ChainStatus::Other(format!("{other:?}")),
        }
    }
}

/// What one connection's verifier saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub chain: ChainStatus,
    /// Whether the peer sent a certificate at all.
    pub presented: bool,
    pub end_entity: Option<CertificateDer<'static>>,
    /// The other certificates the peer sent, in its order.
    pub intermediates: Vec<CertificateDer<'static>>,
}

impl Verification {
    /// The peer sent no certificate (a client without one).
    pub fn absent() -> Verification {
        Verification {
            chain: ChainStatus::NotPresented,
            presented: false,
            end_entity: None,
            intermediates: vec![],
        }
    }

    fn seen(
        chain: ChainStatus,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Verification {
        Verification {
            chain,
            presented: true,
            end_entity: Some(end_entity.clone().into_owned()),
            intermediates: intermediates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
        }
    }
}

/// The slot a connection's verifier writes into.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Option<Verification>>>);

impl Recorder {
    fn record(&self, v: Verification) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }

    /// The recorded verification, emptying the slot. `None` if the verifier
    /// never ran: the peer sent no certificate, or the handshake stopped early.
    pub fn take(&self) -> Option<Verification> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// After a completed handshake: what was recorded, or [`Verification::absent`]
    /// when the peer sent no certificate.
    pub fn finish(&self) -> Verification {
        self.take().unwrap_or_else(Verification::absent)
    }
}

/// The ring provider, the only one the harness uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A root store from trust anchors (e.g. [`crate::pki::Pki::root_der`]).
pub fn root_store(roots: &[CertificateDer<'_>]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store
            .add(root.clone().into_owned())
            .map_err(|e| TlsError::BadTrustAnchor(e.to_string()))?;
    }
    Ok(Arc::new(store))
}

/// The SNI / reference name for connecting to `domain`.
pub fn server_name(domain: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(domain.to_owned()).map_err(|_| TlsError::ServerName(domain.to_owned()))
}

fn alpn(transport: Transport) -> Vec<Vec<u8>> {
    match transport {
        Transport::StartTls => vec![],
        Transport::DirectTls => vec![ALPN_XMPP_SERVER.to_vec()],
    }
}

#[derive(Debug)]
struct RecordingServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    recorder: Recorder,
}

impl ServerCertVerifier for RecordingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let chain = ChainStatus::classify(&result);
        self.recorder
            .record(Verification::seen(chain, end_entity, intermediates));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct RecordingClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    recorder: Recorder,
    purpose: ClientPurpose,
}

/// What a receiving server does with a client certificate whose extended key
/// usage lacks clientAuth (webpki's client verifier requires it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientPurpose {
    /// Record it and complete the handshake: the XMPP layer decides.
    #[default]
    Recorded,
    /// End the handshake with an alert.
    Required,
}

fn wrong_purpose<T>(result: &Result<T, rustls::Error>) -> bool {
    matches!(
        result,
        Err(rustls::Error::InvalidCertificate(
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
        ))
    )
}

impl ClientCertVerifier for RecordingClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No CA hints: what the peer presents should not depend on whether its
        // TLS stack filters certificates by our root's name.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let result = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        let chain = ChainStatus::classify(&result);
        let refuse = self.purpose == ClientPurpose::Required && wrong_purpose(&result);
        self.recorder
            .record(Verification::seen(chain, end_entity, intermediates));
        if refuse {
            return result;
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client (initiating side) config for one connection: trusts `trust`,
/// presents `client_cert` if given, records the server's certificate.
pub fn client_config(
    trust: &Arc<RootCertStore>,
    client_cert: Option<&Leaf>,
    transport: Transport,
) -> Result<(Arc<ClientConfig>, Recorder), TlsError> {
    let provider = provider();
    let inner =
        WebPkiServerVerifier::builder_with_provider(trust.clone(), provider.clone()).build()?;
    let recorder = Recorder::default();
    let verifier = Arc::new(RecordingServerVerifier {
        inner,
        recorder: recorder.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        Some(leaf) => {
            builder.with_client_auth_cert(leaf.chain_der.clone(), leaf.key_der.clone_key())?
        }
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    config.alpn_protocols = alpn(transport);
    Ok((Arc::new(config), recorder))
}

/// A server (receiving side) config for one connection: presents
/// `server_cert`, asks for an optional client certificate and records it.
pub fn server_config(
    trust: &Arc<RootCertStore>,
    server_cert: &Leaf,
    transport: Transport,
) -> Result<(Arc<ServerConfig>, Recorder), TlsError> {
    server_config_for(trust, server_cert, transport, ClientPurpose::Recorded)
}

/// [`server_config`], saying what a client certificate without the
/// clientAuth purpose does to the handshake.
pub fn server_config_for(
    trust: &Arc<RootCertStore>,
    server_cert: &Leaf,
    transport: Transport,
    purpose: ClientPurpose,
) -> Result<(Arc<ServerConfig>, Recorder), TlsError> {
    let provider = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(trust.clone(), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let recorder = Recorder::default();
    let verifier = Arc::new(RecordingClientVerifier {
        inner,
        recorder: recorder.clone(),
        purpose,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            server_cert.chain_der.clone(),
            server_cert.key_der.clone_key(),
        )?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = alpn(transport);
    Ok((Arc::new(config), recorder))
}

/// Which role a certificate is checked for: webpki requires the serverAuth
/// resp. clientAuth extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The certificate of a receiving server (checked by the initiating side).
    Server,
    /// The certificate of an initiating server (checked by the receiving side).
    Client,
}

/// Run a chain (leaf first) through the same recording verifier a handshake
/// uses, without a handshake: for tools and tests. An empty chain gives
/// [`Verification::absent`].
pub fn verify_chain(
    trust: &Arc<RootCertStore>,
    chain: &[CertificateDer<'_>],
    domain: &str,
    role: Role,
) -> Result<Verification, TlsError> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Ok(Verification::absent());
    };
    let recorder = Recorder::default();
    let now = UnixTime::now();
    match role {
        Role::Server => {
            let verifier = RecordingServerVerifier {
                inner: WebPkiServerVerifier::builder_with_provider(trust.clone(), provider())
                    .build()?,
                recorder: recorder.clone(),
            };
            verifier.verify_server_cert(
                end_entity,
                intermediates,
                &server_name(domain)?,
                &[],
                now,
            )?;
        }
        Role::Client => {
            let verifier = RecordingClientVerifier {
                inner: WebPkiClientVerifier::builder_with_provider(trust.clone(), provider())
                    .allow_unauthenticated()
                    .build()?,
                recorder: recorder.clone(),
                purpose: ClientPurpose::Recorded,
            };
            verifier.verify_client_cert(end_entity, intermediates, now)?;
        }
    }
    Ok(recorder.finish())
}

/// Chain and name verdict on a peer for `domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCheck {
    pub chain_ok: bool,
    pub name_ok: bool,
    pub identity: IdentityReport,
    /// One line for reports, e.g. `chain valid; DNS-ID a.test matches a.test`.
    pub summary: String,
}

impl PeerCheck {
    /// The certificate passes SPEC §5 for the domain: SASL EXTERNAL may succeed.
    pub fn ok(&self) -> bool {
        self.chain_ok && self.name_ok
    }
}

/// Judge a recorded verification against the domain the peer claims (the
/// stream's `from` for an initiating peer, the connected domain otherwise).
pub fn check_peer(verification: &Verification, domain: &str) -> PeerCheck {
    let Some(end_entity) = verification.end_entity.as_ref() else {
        let identity = IdentityReport {
            presented: vec![],
            matched: None,
            reason: "no certificate presented".to_owned(),
        };
        return PeerCheck {
            chain_ok: false,
            name_ok: false,
            summary: format!("no certificate presented for {domain}"),
            identity,
        };
    };
    let identity = check_identity(end_entity, domain);
    let chain_ok = verification.chain == ChainStatus::Valid;
    let name_ok = identity.is_match();
    PeerCheck {
        chain_ok,
        name_ok,
        summary: format!("chain {}; {}", verification.chain, identity.reason),
        identity,
    }
}

/// A server (receiving side) config for one connection that asks for no
/// client certificate at all: for a receiving server that never uses SASL
/// EXTERNAL and so has no reason to request one.
pub fn server_config_no_client_auth(
    server_cert: &Leaf,
    transport: Transport,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_single_cert(
            server_cert.chain_der.clone(),
            server_cert.key_der.clone_key(),
        )?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = alpn(transport);
    Ok(Arc::new(config))
}
