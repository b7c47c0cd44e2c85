//! One connection a scenario opened to the target: the stream, what the
//! target last announced (stream id, features), and a push-back queue so a
//! step that reads ahead (e.g. `connect` looking for features) leaves what
//! it did not consume for the next `expect`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::features::Features;
use crate::stream::{StreamError, XmppStream};
use crate::xml::header::stream_error_condition;
use crate::xml::{Element, Event, NsContext, ReadError, StreamHeader, XmlError};

/// Our stream header could not be sent (an unmet step, not harness trouble).
#[derive(Debug, thiserror::Error)]
#[error("could not send the stream header: {0}")]
pub struct HeaderNotSent(#[source] pub StreamError);

/// Something read from the target, whitespace keep-alives skipped.
#[derive(Debug, Clone)]
pub(super) enum Seen {
    Header(StreamHeader),
    Element(Element),
    /// `</stream:stream>`, end of file or a broken connection.
    Closed(String),
    /// Nothing within the wait.
    Timeout,
    /// The target's bytes broke XML rules.
    BadXml(String),
}

impl Seen {
    /// How it reads in a message.
    pub fn describe(&self) -> String {
        match self {
            Seen::Header(h) => h.to_xml_verbatim(),
            Seen::Element(e) => e.to_xml(&crate::scenario::script::pattern::s2s_context()),
            Seen::Closed(how) => format!("the stream closed ({how})"),
            Seen::Timeout => "nothing".into(),
            Seen::BadXml(why) => format!("malformed XML from the target ({why})"),
        }
    }
}

pub(super) struct Live {
    pub stream: XmppStream,
    /// The domain this connection claims (`from` of our header).
    pub from: String,
    /// `id` of the target's last header.
    pub stream_id: Option<String>,
    /// The target's last `<stream:features/>`.
    pub features: Option<Features>,
    /// The same features as they came on the wire, for messages.
    pub features_xml: Option<String>,
    /// What came where features were expected, for messages.
    pub instead_of_features: Option<String>,
    /// How the target ended this stream, once a read saw it end (or break
    /// XML, after which nothing more can be read).
    pub ended: Option<String>,
    /// Whether our headers declare the dialback namespace: exactly when the
    /// scenario's peer supports dialback (SPEC §4.7, XEP-0220 §2.4.1).
    pub declares_dialback: bool,
    pending: VecDeque<Seen>,
}

impl Live {
    pub fn new(stream: XmppStream, from: String) -> Live {
        Live {
            stream,
            from,
            stream_id: None,
            features: None,
            features_xml: None,
            instead_of_features: None,
            ended: None,
            declares_dialback: true,
            pending: VecDeque::new(),
        }
    }

    /// Puts back something read ahead; the next `read` returns it first.
    /// A timeout is not kept: it says nothing about what comes next.
    pub fn push_back(&mut self, seen: Seen) {
        if !matches!(seen, Seen::Timeout) {
            self.pending.push_front(seen);
        }
    }

    /// The next meaningful thing within `wait`. A header updates the stream id.
    pub async fn read(&mut self, wait: Duration) -> Seen {
        if let Some(seen) = self.pending.pop_front() {
            return seen;
        }
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Seen::Timeout;
            }
            let seen = match self.stream.next(left).await {
                Ok(Event::Whitespace) => continue,
                Ok(Event::Header(h)) => {
                    self.stream_id = h.id.clone();
                    Seen::Header(h)
                }
                Ok(Event::Element(e)) => Seen::Element(e),
                Ok(Event::End) => Seen::Closed("closing tag".into()),
                Ok(Event::Eof) => Seen::Closed("connection closed".into()),
                Err(ReadError::Timeout) => Seen::Timeout,
                Err(ReadError::Xml(XmlError::Io(e))) => Seen::Closed(format!("I/O: {e}")),
                Err(ReadError::Xml(e)) => Seen::BadXml(e.to_string()),
                Err(ReadError::Closed | ReadError::Busy) => Seen::Closed("reader closed".into()),
            };
            // A stream error ends the stream too (RFC 6120 §4.9.1.1: unrecoverable).
            let ended = match &seen {
                Seen::Closed(_) | Seen::BadXml(_) => Some(seen.describe()),
                Seen::Element(e) => {
                    stream_error_condition(e).map(|c| format!("stream error <{c}/>"))
                }
                _ => None,
            };
            if let Some(how) = ended {
                self.ended.get_or_insert(how);
            }
            return seen;
        }
    }

    /// The next thing that is not a stream header (headers only update the id).
    pub async fn read_past_headers(&mut self, wait: Duration) -> Seen {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.read(left).await {
                Seen::Header(_) => continue,
                other => return other,
            }
        }
    }

    /// Sends our header and takes the target's header and features if they
    /// come; anything else is left for the next step. Returns what came.
    pub async fn open(&mut self, to: &str, wait: Duration) -> Result<String, HeaderNotSent> {
        let mut header = StreamHeader::server().with_from(&self.from).with_to(to);
        if !self.declares_dialback {
            header.prefixes.retain(|(prefix, _)| prefix != "db");
        }
        self.stream
            .send_header(&header)
            .await
            .map_err(HeaderNotSent)?;
        self.features = None;
        self.features_xml = None;
        Ok(self.take_header_and_features(wait).await)
    }

    /// Reads the target's header and features after a header of ours.
    pub async fn take_header_and_features(&mut self, wait: Duration) -> String {
        let until = Instant::now() + wait;
        let header = match self.read(wait).await {
            Seen::Header(h) => h,
            other => {
                let text = other.describe();
                self.push_back(other);
                self.instead_of_features = Some(text.clone());
                return format!("no stream header, got {text}");
            }
        };
        let left = until.saturating_duration_since(Instant::now());
        match self.read(left).await {
            Seen::Element(e) if Features::parse(&e).is_some() => {
                self.features = Features::parse(&e);
                let xml = e.to_xml(&NsContext::default());
                self.features_xml = Some(xml.clone());
                self.instead_of_features = None;
                format!(
                    "header id={} and features {xml}",
                    header.id.as_deref().unwrap_or("(none)"),
                )
            }
            other => {
                let text = other.describe();
                self.push_back(other);
                self.instead_of_features = Some(text.clone());
                format!(
                    "header id={}, then {text}",
                    header.id.as_deref().unwrap_or("(none)")
                )
            }
        }
    }
}
