//! Negotiating a client stream up to a bound resource (RFC 6120 §5–§7):
//! every wait has a deadline, every refusal is a typed error naming the stage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::RootCertStore;
use serde::Deserialize;

use super::scram::{self, Scram};
use super::{Account, C2sError};
use crate::features::Features;
use crate::stream::{Transcript, XmppStream};
use crate::xml::header::stream_error_condition;
use crate::xml::{Element, Event, Limits, NS_CLIENT, NS_SASL, NS_STREAMS, NS_TLS, ReadError};
use crate::xml::{NsContext, StreamHeader};

const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const NS_REGISTER: &str = "jabber:iq:register";
const NS_ROSTER: &str = "jabber:iq:roster";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// What the client reads: scenarios send stanzas up to the servers' 256 KiB
/// limit, and a server adds its own attributes when it delivers them, so
/// the client (which only observes) takes far more than a peer would.
const CLIENT_LIMITS: Limits = Limits {
    max_stanza_bytes: 4 * 1024 * 1024,
    max_depth: 64,
};

/// How a profile's accounts come into existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provision {
    /// XEP-0077 in-band registration over c2s (after STARTTLS), once the
    /// server runs: both Prosody (`mod_register`) and ejabberd
    /// (`mod_register`) support it, and it needs no control tool that
    /// expects an installed, named node.
    InBand,
}

/// One login of one account.
pub struct Login<'a> {
    /// The server's c2s port (loopback).
    pub addr: SocketAddr,
    /// The domain the account lives on (also the TLS name checked).
    pub domain: &'a str,
    pub account: &'a Account,
    /// The only CA trusted (the run's).
    pub trust: Arc<RootCertStore>,
    /// Deadline of each wait.
    pub wait: Duration,
    /// Register the account in-band first.
    pub register: bool,
    pub resource: &'a str,
}

/// A stream with a bound resource, ready for stanzas.
pub(super) struct Bound {
    pub stream: XmppStream,
    pub jid: String,
    pub transcript: Transcript,
    /// The SASL mechanism that authenticated.
    pub mechanism: &'static str,
}

impl Login<'_> {
    pub(super) async fn run(&self) -> Result<Bound, C2sError> {
        let transcript = Transcript::new();
        let mut stream = XmppStream::connect(self.addr, CLIENT_LIMITS, transcript.clone(), 1)
            .await
            .map_err(|e| C2sError::Connect {
                addr: self.addr,
                detail: e.to_string(),
            })?;
        let features = self.open(&mut stream, "stream header").await?;
        if features.starttls.is_none() {
            return Err(missing("STARTTLS", "<starttls/>", &features));
        }
        self.starttls(&mut stream).await?;
        let mut features = self.open(&mut stream, "stream header after TLS").await?;
        if self.register {
            self.register(&mut stream).await?;
        }
        let mechanism = self.authenticate(&mut stream, &features).await?;
        stream.restart().map_err(|e| read_err("SASL restart", e))?;
        features = self.open(&mut stream, "stream header after SASL").await?;
        if !has(&features, NS_BIND, "bind") {
            return Err(missing("resource binding", "<bind/>", &features));
        }
        let bind = Element::new(NS_BIND, "bind")
            .with_child(Element::new(NS_BIND, "resource").with_text(self.resource));
        let answer = self
            .iq(&mut stream, "set", bind, "bind", "resource binding")
            .await?;
        let jid = answer
            .child(NS_BIND, "bind")
            .and_then(|b| b.child(NS_BIND, "jid"))
            .map(|j| j.text().trim().to_string())
            .filter(|j| !j.is_empty())
            .ok_or_else(|| C2sError::Unexpected {
                stage: "resource binding",
                got: format!("a result without <jid/>: {}", xml(&answer)),
            })?;
        // RFC 3921 sessions: only where the server does not mark them optional.
        let session = features.other.iter().find(|e| e.is(NS_SESSION, "session"));
        if session.is_some_and(|s| s.child(NS_SESSION, "optional").is_none()) {
            let s = Element::new(NS_SESSION, "session");
            self.iq(&mut stream, "set", s, "session", "session").await?;
        }
        let roster = Element::new(NS_ROSTER, "query");
        self.iq(&mut stream, "get", roster, "roster", "roster get")
            .await?;
        let presence = Element::new(NS_CLIENT, "presence");
        stream
            .send(&presence)
            .await
            .map_err(|e| closed("initial presence", e.to_string()))?;
        Ok(Bound {
            stream,
            jid,
            transcript,
            mechanism,
        })
    }

    /// Sends a client header and reads the server's header and features.
    async fn open(
        &self,
        stream: &mut XmppStream,
        stage: &'static str,
    ) -> Result<Features, C2sError> {
        let header = StreamHeader {
            version: Some("1.0".into()),
            default_ns: NS_CLIENT.into(),
            stream_ns_ok: true,
            prefixes: vec![("stream".into(), NS_STREAMS.into())],
            to: Some(self.domain.to_string()),
            ..StreamHeader::default()
        };
        stream
            .send_header(&header)
            .await
            .map_err(|e| closed(stage, e.to_string()))?;
        loop {
            match stream.next(self.wait).await {
                Ok(Event::Header(_)) => break,
                Ok(Event::Whitespace) => continue,
                other => return Err(unexpected_event(stage, other, self.wait)),
            }
        }
        let e = self.element(stream, stage).await?;
        Features::parse(&e).ok_or_else(|| C2sError::Unexpected {
            stage,
            got: format!("{} where <stream:features/> belong", xml(&e)),
        })
    }

    /// The next element; a stream error or the end of the stream is an error.
    async fn element(
        &self,
        stream: &mut XmppStream,
        stage: &'static str,
    ) -> Result<Element, C2sError> {
        loop {
            match stream.next(self.wait).await {
                Ok(Event::Whitespace) => continue,
                Ok(Event::Element(e)) => {
                    if let Some(c) = stream_error_condition(&e) {
                        return Err(C2sError::StreamError {
                            stage,
                            condition: c.to_string(),
                        });
                    }
                    return Ok(e);
                }
                other => return Err(unexpected_event(stage, other, self.wait)),
            }
        }
    }

    async fn starttls(&self, stream: &mut XmppStream) -> Result<(), C2sError> {
        let stage = "STARTTLS";
        stream
            .send(&Element::new(NS_TLS, "starttls"))
            .await
            .map_err(|e| closed(stage, e.to_string()))?;
        let e = self.element(stream, stage).await?;
        if !e.is(NS_TLS, "proceed") {
            return Err(C2sError::Unexpected {
                stage,
                got: xml(&e),
            });
        }
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(crate::tls::PROTOCOL_VERSIONS)
            .map_err(|e| C2sError::Tls(e.to_string()))?
            .with_root_certificates(self.trust.clone())
            .with_no_client_auth();
        let name =
            crate::tls::server_name(self.domain).map_err(|e| C2sError::Tls(e.to_string()))?;
        let handshake = stream.starttls_client(Arc::new(config), name);
        match tokio::time::timeout(self.wait, handshake).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(C2sError::Tls(e.to_string())),
            Err(_) => Err(C2sError::Timeout {
                stage: "TLS handshake",
                wait: self.wait,
            }),
        }
    }

    /// XEP-0077 §3.1: registration with the two fields every server asks for.
    async fn register(&self, stream: &mut XmppStream) -> Result<(), C2sError> {
        let query = Element::new(NS_REGISTER, "query")
            .with_child(Element::new(NS_REGISTER, "username").with_text(&self.account.user))
            .with_child(Element::new(NS_REGISTER, "password").with_text(&self.account.password));
        self.iq(stream, "set", query, "register", "in-band registration")
            .await
            .map(|_| ())
    }

    /// SCRAM-SHA-1 where offered, PLAIN (over TLS only) otherwise; returns
    /// the mechanism used.
    async fn authenticate(
        &self,
        stream: &mut XmppStream,
        features: &Features,
    ) -> Result<&'static str, C2sError> {
        let offers = |m: &str| features.mechanisms.iter().any(|o| o == m);
        if offers(scram::MECHANISM) {
            let nonce = super::Account::generated("nonce").password;
            let mut scram = Scram::new(&self.account.user, &self.account.password, &nonce);
            let fail = |detail: String| C2sError::Sasl {
                mechanism: scram::MECHANISM,
                detail,
            };
            let first = self
                .sasl_round(stream, auth(scram::MECHANISM, &scram.client_first()))
                .await?;
            let SaslStep::Challenge(server_first) = first else {
                return Err(fail("no challenge after client-first-message".into()));
            };
            let fin = scram
                .client_final(&server_first)
                .map_err(|e| fail(e.to_string()))?;
            let response = Element::new(NS_SASL, "response").with_text(STANDARD.encode(fin));
            let server_final = match self.sasl_round(stream, response).await? {
                SaslStep::Success(data) => data,
                // RFC 6120 §6.3.10: the additional data may come as a last
                // challenge, answered with an empty response.
                SaslStep::Challenge(data) => {
                    let empty = Element::new(NS_SASL, "response");
                    match self.sasl_round(stream, empty).await? {
                        SaslStep::Success(_) => data,
                        SaslStep::Challenge(_) => {
                            return Err(fail("a third challenge".into()));
                        }
                    }
                }
            };
            scram
                .verify(&server_final)
                .map_err(|e| fail(e.to_string()))
                .map(|()| scram::MECHANISM)
        } else if offers("PLAIN") {
            let payload = format!("\0{}\0{}", self.account.user, self.account.password);
            match self.sasl_round(stream, auth("PLAIN", &payload)).await? {
                SaslStep::Success(_) => Ok("PLAIN"),
                SaslStep::Challenge(_) => Err(C2sError::Sasl {
                    mechanism: "PLAIN",
                    detail: "a challenge where PLAIN has none".into(),
                }),
            }
        } else {
            Err(missing("SASL", "SCRAM-SHA-1 or PLAIN mechanism", features))
        }
    }

    /// Sends one SASL element and reads the server's answer.
    async fn sasl_round(
        &self,
        stream: &mut XmppStream,
        send: Element,
    ) -> Result<SaslStep, C2sError> {
        let stage = "SASL";
        stream
            .send(&send)
            .await
            .map_err(|e| closed(stage, e.to_string()))?;
        let e = self.element(stream, stage).await?;
        let data = || -> Result<String, C2sError> {
            let text = e.text();
            let bytes = STANDARD
                .decode(text.trim())
                .map_err(|_| C2sError::Unexpected {
                    stage,
                    got: format!("SASL data that is not base64: {}", xml(&e)),
                })?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        if e.is(NS_SASL, "challenge") {
            Ok(SaslStep::Challenge(data()?))
        } else if e.is(NS_SASL, "success") {
            Ok(SaslStep::Success(data()?))
        } else if e.is(NS_SASL, "failure") {
            Err(C2sError::Sasl {
                mechanism: if send.attr("mechanism") == Some("PLAIN") {
                    "PLAIN"
                } else {
                    scram::MECHANISM
                },
                detail: format!("the server answered {}", xml(&e)),
            })
        } else {
            Err(C2sError::Unexpected {
                stage,
                got: xml(&e),
            })
        }
    }

    /// An IQ request and its answer (same id); an error answer is an error.
    async fn iq(
        &self,
        stream: &mut XmppStream,
        ty: &str,
        payload: Element,
        id: &str,
        stage: &'static str,
    ) -> Result<Element, C2sError> {
        let iq = Element::new(NS_CLIENT, "iq")
            .with_attr("type", ty)
            .with_attr("id", id)
            .with_child(payload);
        stream
            .send(&iq)
            .await
            .map_err(|e| closed(stage, e.to_string()))?;
        let until = tokio::time::Instant::now() + self.wait;
        loop {
            if tokio::time::Instant::now() >= until {
                return Err(C2sError::Timeout {
                    stage,
                    wait: self.wait,
                });
            }
            let e = self.element(stream, stage).await?;
            if !e.is(NS_CLIENT, "iq") || e.attr("id") != Some(id) {
                // Anything else this early (a presence, a message) is not ours to judge.
                continue;
            }
            return match e.attr("type") {
                Some("result") => Ok(e),
                _ => Err(C2sError::IqError {
                    stage,
                    error: stanza_error(&e),
                }),
            };
        }
    }
}

enum SaslStep {
    Challenge(String),
    Success(String),
}

fn auth(mechanism: &str, payload: &str) -> Element {
    Element::new(NS_SASL, "auth")
        .with_attr("mechanism", mechanism)
        .with_text(STANDARD.encode(payload))
}

fn has(f: &Features, ns: &str, name: &str) -> bool {
    f.other.iter().any(|e| e.is(ns, name))
}

fn missing(stage: &'static str, what: &'static str, f: &Features) -> C2sError {
    C2sError::Missing {
        stage,
        what,
        features: xml(&f.to_element()),
    }
}

fn closed(stage: &'static str, how: String) -> C2sError {
    C2sError::Closed { stage, how }
}

fn read_err(stage: &'static str, e: ReadError) -> C2sError {
    closed(stage, e.to_string())
}

fn unexpected_event(
    stage: &'static str,
    got: Result<Event, ReadError>,
    wait: Duration,
) -> C2sError {
    match got {
        Err(ReadError::Timeout) => C2sError::Timeout { stage, wait },
        Err(e) => closed(stage, e.to_string()),
        Ok(Event::End) => closed(stage, "closing tag".into()),
        Ok(Event::Eof) => closed(stage, "connection closed".into()),
        Ok(Event::Header(h)) => C2sError::Unexpected {
            stage,
            got: format!("a second stream header {}", h.to_xml_verbatim()),
        },
        Ok(Event::Element(e)) => C2sError::Unexpected {
            stage,
            got: xml(&e),
        },
        Ok(Event::Whitespace) => C2sError::Unexpected {
            stage,
            got: "whitespace".into(),
        },
    }
}

/// `<error type='cancel'><conflict/></error>` as `cancel/conflict`.
fn stanza_error(e: &Element) -> String {
    let Some(err) = e.child(NS_CLIENT, "error") else {
        return xml(e);
    };
    let condition = err
        .children_elements()
        .find(|c| c.name != "text" && c.ns == NS_STANZAS)
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "(no condition)".into());
    format!("{}/{condition}", err.attr("type").unwrap_or("?"))
}

pub(super) fn xml(e: &Element) -> String {
    e.to_xml(&NsContext::with_default(NS_CLIENT))
}
