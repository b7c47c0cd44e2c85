//! Observations: plain, serialisable facts about what a target did, recorded
//! by the peers so that a judge classifies outcomes without re-parsing the
//! transcript.

use serde::{Deserialize, Serialize};

use crate::features::Features;
use crate::partner::Method;
use crate::stream::XmppStream;
use crate::tls::{ChainStatus, PresentedId, Verification, check_peer};
use crate::xml::{Element, NsContext, StreamHeader};

/// The stream features offered, as data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeaturesSeen {
    /// `Some(required)` when STARTTLS was offered.
    pub starttls: Option<bool>,
    pub mechanisms: Vec<String>,
    /// An empty `<mechanisms/>` element (malformed, RFC 6120 §6.4.1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_mechanisms: bool,
    pub dialback: bool,
    /// `{namespace}name` of every other feature.
    pub other: Vec<String>,
}

impl From<&Features> for FeaturesSeen {
    fn from(f: &Features) -> Self {
        FeaturesSeen {
            starttls: f.starttls,
            mechanisms: f.mechanisms.clone(),
            empty_mechanisms: f.empty_mechanisms,
            dialback: f.dialback,
            other: f
                .other
                .iter()
                .map(|e| format!("{{{}}}{}", e.ns, e.name))
                .collect(),
        }
    }
}

/// The attributes of a stream header the peers care about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderSeen {
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
    pub version: Option<String>,
    /// Whether the header declared `xmlns:db='jabber:server:dialback'`
    /// (XEP-0220 §2.4.1: the traditional signal of dialback support).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dialback_declared: bool,
}

impl From<&StreamHeader> for HeaderSeen {
    fn from(h: &StreamHeader) -> Self {
        HeaderSeen {
            from: h.from.clone(),
            to: h.to.clone(),
            id: h.id.clone(),
            version: h.version.clone(),
            dialback_declared: h
                .prefixes
                .iter()
                .any(|(_, ns)| ns == crate::xml::NS_DIALBACK),
        }
    }
}

/// The verdict on a certificate the other side presented (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertCheck {
    /// The domain the certificate was checked for.
    pub domain: String,
    pub presented: bool,
    pub chain: ChainStatus,
    pub name_ok: bool,
    pub matched: Option<PresentedId>,
    /// Chain and name both pass: usable for authentication.
    pub ok: bool,
    pub summary: String,
    /// Every identity the certificate presents (RFC 6125: DNS-ID, SRV-ID,
    /// XmppAddr; CN last), for reports that show them (the probe).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<PresentedId>,
    /// How many certificates were sent (leaf and chain).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_len: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CertCheck {
    pub fn of(v: &Verification, domain: &str) -> CertCheck {
        let check = check_peer(v, domain);
        CertCheck {
            domain: domain.to_owned(),
            presented: v.presented,
            chain: v.chain.clone(),
            name_ok: check.name_ok,
            matched: check.identity.matched.clone(),
            ok: check.ok(),
            summary: check.summary,
            identities: check.identity.presented.clone(),
            chain_len: usize::from(v.end_entity.is_some()) + v.intermediates.len(),
        }
    }
}

/// The protocol step an observation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Connect,
    Header,
    Features,
    StartTls,
    TlsHandshake,
    Sasl,
    Dialback,
    Verify,
    Stanza,
}

/// Why a step did not get the answer it waited for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StepFailure {
    /// Nothing (complete) arrived within the deadline.
    Timeout,
    /// The other side ended the stream (`</stream:stream>` or EOF).
    Closed,
    /// The other side sent `<stream:error/>` with this condition.
    StreamError { condition: String },
    /// The other side's bytes broke XML or RFC 6120 §11 rules.
    Xml { condition: String, detail: String },
    /// Connecting or writing failed.
    Io { detail: String },
    /// The TLS handshake failed.
    Tls { detail: String },
    /// A well-formed but unexpected element, shown as XML.
    Unexpected { element: String },
}

/// A failure with the step it happened in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub stage: Stage,
    pub failure: StepFailure,
}

/// Why an initiating peer stopped on its own, without a failure by the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GiveUp {
    /// The peer requires TLS and the target offered no STARTTLS (SPEC §4.2).
    TlsNotOffered,
    /// No method admitted by the peer is offered in the stream's state.
    NoCommonMethod,
    /// Every method tried was refused (SASL failure without a usable
    /// dialback, dialback `invalid`/`error`).
    AuthenticationFailed,
}

/// The answer to SASL EXTERNAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum SaslOutcome {
    Success,
    Failure {
        condition: String,
    },
    /// No answer (see the report's `failure` for why).
    NoAnswer,
}

/// The answer to a dialback request (`db:result` or `db:verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum DialbackOutcome {
    Valid,
    Invalid,
    Error { condition: Option<String> },
    NoAnswer,
}

/// Everything an initiating peer observed about a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitiatorReport {
    pub peer_domain: String,
    pub target_domain: String,
    pub stream_no: u32,
    pub connected: bool,
    /// Each header the target sent, in order (one per stream restart).
    pub headers: Vec<HeaderSeen>,
    pub features_clear: Option<FeaturesSeen>,
    pub features_tls: Option<FeaturesSeen>,
    pub features_sasl: Option<FeaturesSeen>,
    /// TLS was negotiated.
    pub tls: bool,
    /// e.g. `TLSv1_3`.
    pub tls_version: Option<String>,
    /// The target's server certificate, checked for the target domain.
    pub target_cert: Option<CertCheck>,
    /// Clear-text bytes the target sent after `<proceed/>`, discarded.
    pub pipelined_bytes: usize,
    /// SASL EXTERNAL, if attempted, with the authzid sent.
    pub sasl_authzid: Option<String>,
    pub sasl: Option<SaslOutcome>,
    pub dialback: Option<DialbackOutcome>,
    /// The method that authenticated the stream.
    pub method: Option<Method>,
    pub gave_up: Option<GiveUp>,
    /// A stream error the target sent, if any.
    pub stream_error: Option<String>,
    /// The target ended the stream (closing tag, EOF or a broken connection).
    pub target_closed: bool,
    pub failure: Option<Failed>,
}

impl InitiatorReport {
    pub fn authenticated(&self) -> bool {
        self.method.is_some()
    }
}

/// The result of [`super::initiate`]: observations, and on success the
/// authenticated stream for sending stanzas.
pub struct Initiated {
    pub report: InitiatorReport,
    pub stream: Option<XmppStream>,
}

/// A stanza (or other element) as received, with its routing attributes
/// pulled out for predicates. Serialised as XML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementSeen {
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// With every namespace explicit.
    pub xml: String,
    /// The element itself, for predicates. Not serialised (`xml` is); after
    /// deserialising it is empty — use `Element::parse(&xml)` if needed.
    #[serde(skip)]
    pub element: Element,
}

impl From<&Element> for ElementSeen {
    fn from(e: &Element) -> Self {
        let attr = |k: &str| e.attr(k).map(str::to_owned);
        ElementSeen {
            name: e.name.clone(),
            from: attr("from"),
            to: attr("to"),
            id: attr("id"),
            ty: attr("type"),
            xml: e.to_xml(&NsContext::default()),
            element: e.clone(),
        }
    }
}

/// What the target did wrong on a stream toward a peer server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    /// A stanza before the stream was authenticated (RFC 6120 §4.9.3.12).
    UnauthenticatedStanza,
    /// A stanza whose `from` domain is not the authenticated one.
    InvalidFrom,
    /// A stanza without `from` or `to`.
    ImproperAddressing,
    /// `db:result` where the peer offers no dialback for the stream state.
    DialbackNotOffered,
    /// SASL `<auth/>` where the peer offers no such mechanism.
    SaslNotOffered,
    /// `<starttls/>` where the peer offers none (or TLS is already up).
    StartTlsNotOffered,
    /// Anything else unexpected.
    Unexpected,
}

/// The result of a dialback request the peer server handled as receiving server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialbackHandled {
    pub from: String,
    pub to: String,
    /// What the authoritative server (the target) answered to `db:verify`.
    pub verify: DialbackOutcome,
    /// Why the verification round trip failed, if it did.
    pub verify_failure: Option<Failed>,
    /// What the peer answered the originating server.
    pub answer: DialbackOutcome,
}

/// One fact observed by a [`super::PeerServer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ServerEvent {
    /// A stream header arrived (each restart gives one).
    Header {
        stream: u32,
        tls: bool,
        header: HeaderSeen,
    },
    /// The peer refused the stream before any authentication.
    Refused { stream: u32, condition: String },
    Tls {
        stream: u32,
        version: Option<String>,
        /// The target's client certificate, checked for the stream's `from`.
        client_cert: CertCheck,
        pipelined_bytes: usize,
        /// The Server Name Indication the target sent, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sni: Option<String>,
        /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cipher_suite: Option<String>,
    },
    /// A TLS ClientHello arrived where the peer speaks STARTTLS: the target
    /// tried direct TLS (XEP-0368) on this port.
    DirectTls {
        stream: u32,
        sni: Option<String>,
        alpn: Vec<String>,
    },
    Sasl {
        stream: u32,
        authzid: Option<String>,
        outcome: SaslOutcome,
    },
    /// The target asked the peer (as receiving server) to verify a key.
    Dialback {
        stream: u32,
        tls: bool,
        handled: DialbackHandled,
    },
    /// The peer (as authoritative server) answered a `db:verify`.
    Verify {
        stream: u32,
        tls: bool,
        from: String,
        to: String,
        id: Option<String>,
        /// `None` when the peer did not answer ([`super::VerifyMode::Silent`]).
        answered: Option<bool>,
    },
    /// The stream is authenticated for `domain`.
    Authenticated {
        stream: u32,
        domain: String,
        method: Method,
    },
    /// A stanza on an authenticated stream.
    Stanza {
        stream: u32,
        tls: bool,
        method: Method,
        domain: String,
        stanza: ElementSeen,
    },
    /// The target broke a rule; `element` is what it sent.
    Violation {
        stream: u32,
        tls: bool,
        kind: ViolationKind,
        element: Option<ElementSeen>,
    },
    /// The stream ended.
    Closed {
        stream: u32,
        /// `None` when it ended without a failure: the target closed it, or
        /// the peer refused it (a `Refused` event precedes). Otherwise why the
        /// peer stopped (timeout, bad XML, broken connection).
        failure: Option<StepFailure>,
    },
}

impl ServerEvent {
    pub fn stream(&self) -> u32 {
        match self {
            ServerEvent::Header { stream, .. }
            | ServerEvent::Refused { stream, .. }
            | ServerEvent::Tls { stream, .. }
            | ServerEvent::DirectTls { stream, .. }
            | ServerEvent::Sasl { stream, .. }
            | ServerEvent::Dialback { stream, .. }
            | ServerEvent::Verify { stream, .. }
            | ServerEvent::Authenticated { stream, .. }
            | ServerEvent::Stanza { stream, .. }
            | ServerEvent::Violation { stream, .. }
            | ServerEvent::Closed { stream, .. } => *stream,
        }
    }
}
