//! The stream reader: one dedicated task per stream, driven by commands.
//!
//! Why a task? quick-xml's async reads are not cancel-safe: dropping a read
//! future half-way loses the bytes it had consumed into its buffer. Wrapping a
//! read in `timeout` or `select!` would therefore corrupt the stream the first
//! time a deadline fires. Instead the read runs to completion in its own task,
//! and the *consumer* puts the deadline on the reply channel: a timeout there
//! loses nothing, the reply is simply picked up by the next call.
//!
//! Why commands? The task reads only when asked, one event per request. It
//! never reads ahead of what the consumer has seen (beyond the transport
//! buffer), which is what makes STARTTLS safe: after `<proceed/>` the task can
//! hand back the transport together with the exact bytes it had buffered but
//! not parsed, and the caller can discard them (RFC 6120 §5.3.3 — clear-text
//! bytes after STARTTLS must never be processed as part of the TLS session).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use quick_xml::NsReader;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Event;
use super::builder::TreeBuilder;
use super::error::{Limits, XmlError, from_quick_xml};

/// Why [`ReaderHandle::next`] returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Nothing complete arrived before the deadline. The stream is intact: the
    /// pending read continues and the next call picks up its result.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The peer's XML broke a rule; the stream cannot continue (every later
    /// call returns the same error).
    #[error(transparent)]
    Xml(XmlError),
    /// The reader task is gone (released, or the runtime is shutting down).
    #[error("stream reader closed")]
    Closed,
    /// `reset`/`release` while a timed-out read is still outstanding: call
    /// [`ReaderHandle::next`] until it delivers first.
    #[error("a read is still outstanding")]
    Busy,
}

/// What [`ReaderHandle::release`] gives back.
pub struct Released<R> {
    /// The transport, positioned right after the last byte the reader consumed.
    pub reader: R,
    /// Bytes the reader had already pulled from the transport but not parsed:
    /// everything after the last delivered event. After STARTTLS these were
    /// sent in clear text and must be discarded.
    pub buffered: Vec<u8>,
}

impl<R> fmt::Debug for Released<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Released")
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

/// Why [`ReaderHandle::release`] failed.
pub enum ReleaseError<R> {
    /// A timed-out read is outstanding; the handle is given back unchanged.
    Busy(ReaderHandle<R>),
    /// The reader task is gone and took the transport with it.
    Closed,
}

impl<R> fmt::Debug for ReleaseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Busy(_) => f.write_str("Busy"),
            ReleaseError::Closed => f.write_str("Closed"),
        }
    }
}

impl<R> fmt::Display for ReleaseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Busy(_) => f.write_str("a read is still outstanding"),
            ReleaseError::Closed => f.write_str("stream reader closed"),
        }
    }
}

impl<R> std::error::Error for ReleaseError<R> {}

enum Command<R> {
    Next(oneshot::Sender<Result<Event, XmlError>>),
    Reset,
    Release(oneshot::Sender<Released<R>>),
}

/// The consumer's end of a reader task. Dropping it stops the task.
pub struct ReaderHandle<R> {
    tx: mpsc::Sender<Command<R>>,
    /// The reply to a `Next` that timed out, still to be collected.
    pending: Option<oneshot::Receiver<Result<Event, XmlError>>>,
    task: Option<JoinHandle<()>>,
    limits: Limits,
}

/// Starts a reader task on `r` (expecting a stream header first).
pub fn spawn_reader<R>(r: R, limits: Limits) -> ReaderHandle<R>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    // At most one Next plus one Reset/Release are ever in flight (the handle
    // refuses more), so a tiny bounded channel suffices.
    let (tx, rx) = mpsc::channel(4);
    let task = tokio::spawn(run(ReaderTask::new(r, limits), rx));
    ReaderHandle {
        tx,
        pending: None,
        task: Some(task),
        limits,
    }
}

impl<R> ReaderHandle<R> {
    /// The next event, waiting at most `deadline`.
    ///
    /// Cancel-safe: on [`ReadError::Timeout`] (or if this future is dropped)
    /// the read carries on in the task and its result is returned by the next call.
    pub async fn next(&mut self, deadline: Duration) -> Result<Event, ReadError> {
        let rx = match &mut self.pending {
            Some(rx) => rx,
            None => {
                let (reply, rx) = oneshot::channel();
                self.tx
                    .try_send(Command::Next(reply))
                    .map_err(|_| ReadError::Closed)?;
                self.pending.insert(rx)
            }
        };
        match tokio::time::timeout(deadline, rx).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(reply) => {
                self.pending = None;
                match reply {
                    Ok(result) => result.map_err(ReadError::Xml),
                    Err(_) => Err(ReadError::Closed),
                }
            }
        }
    }

    /// Restarts the stream (RFC 6120 §4.3.3, after SASL success): the parser is
    /// replaced by a fresh one over the same buffered transport, expecting a new
    /// header. Bytes already buffered are kept: they belong to the new stream.
    pub fn reset(&mut self) -> Result<(), ReadError> {
        if self.pending.is_some() {
            return Err(ReadError::Busy);
        }
        self.tx
            .try_send(Command::Reset)
            .map_err(|_| ReadError::Closed)
    }

    /// Stops the task and returns the transport plus the bytes it had buffered
    /// beyond the last delivered event (for STARTTLS). Unlike `next`, not
    /// cancel-safe: dropping this future drops the transport.
    pub async fn release(mut self) -> Result<Released<R>, ReleaseError<R>> {
        if self.pending.is_some() {
            return Err(ReleaseError::Busy(self));
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.try_send(Command::Release(reply)).is_err() {
            return Err(ReleaseError::Closed);
        }
        let released = rx.await.map_err(|_| ReleaseError::Closed)?;
        // The task ends by itself after a release; do not abort it in Drop.
        self.task = None;
        Ok(released)
    }

    /// Whether a timed-out read is still outstanding.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl<R> Drop for ReaderHandle<R> {
    fn drop(&mut self) {
        // A task blocked in a read would otherwise live until the peer sends
        // something or hangs up.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn run<R: AsyncRead + Unpin + Send>(
    mut task: ReaderTask<R>,
    mut rx: mpsc::Receiver<Command<R>>,
) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Next(reply) => {
                let result = task.next_event().await;
                // The consumer may be gone; nothing to do then.
                let _ = reply.send(result);
            }
            Command::Reset => task = task.reset(),
            Command::Release(reply) => {
                let _ = reply.send(task.release());
                return;
            }
        }
    }
}

struct ReaderTask<R> {
    reader: NsReader<Metered<R>>,
    builder: TreeBuilder,
    buf: Vec<u8>,
    limits: Limits,
    /// Once the XML is broken there is no resynchronising: keep answering with
    /// the first error.
    failed: Option<XmlError>,
}

impl<R: AsyncRead + Unpin> ReaderTask<R> {
    fn new(r: R, limits: Limits) -> Self {
        Self::over(
            Metered::new(BufReader::new(r), limits.max_stanza_bytes),
            limits,
        )
    }

    fn over(metered: Metered<R>, limits: Limits) -> Self {
        ReaderTask {
            reader: NsReader::from_reader(metered),
            builder: TreeBuilder::stream(limits),
            buf: Vec::new(),
            limits,
            failed: None,
        }
    }

    fn reset(self) -> Self {
        let mut metered = self.reader.into_inner();
        metered.remaining = self.limits.max_stanza_bytes;
        metered.exceeded = false;
        Self::over(metered, self.limits)
    }

    fn release(self) -> Released<R> {
        let metered = self.reader.into_inner();
        let buffered = metered.inner.buffer().to_vec();
        Released {
            reader: metered.inner.into_inner(),
            buffered,
        }
    }

    async fn next_event(&mut self) -> Result<Event, XmlError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if let Some(ev) = self.builder.take_queued() {
            return Ok(ev);
        }
        if self.builder.at_stream_level() {
            // quick-xml would hold a whitespace run until the next `<`
            // arrives, so an idle peer's keep-alives would surface only with
            // its next stanza. Take them off the buffer ourselves instead.
            let m = self.reader.get_mut();
            match m.fill_buf().await {
                Ok(buf) => {
                    let n = buf
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                        .count();
                    if n > 0 {
                        m.consume(n);
                        m.remaining = self.limits.max_stanza_bytes;
                        return Ok(Event::Whitespace);
                    }
                }
                Err(err) => {
                    let err = XmlError::Io(err.to_string());
                    self.failed = Some(err.clone());
                    return Err(err);
                }
            }
        }
        loop {
            self.buf.clear();
            let result = match self.reader.read_event_into_async(&mut self.buf).await {
                Ok(ev) => self.builder.feed(ev, self.reader.resolver()),
                Err(err) => {
                    let m = self.reader.get_mut();
                    if m.exceeded {
                        Err(XmlError::PolicyViolation(format!(
                            "element exceeds {} bytes",
                            self.limits.max_stanza_bytes
                        )))
                    } else if m.eof
                        && matches!(
                            err,
                            quick_xml::Error::Syntax(_)
                                | quick_xml::Error::IllFormed(
                                    quick_xml::errors::IllFormedError::UnclosedReference
                                )
                        )
                    {
                        // Truncated markup at end of input: the peer hung up
                        // mid-element, which is an end of stream, not bad XML.
                        Ok(Some(Event::Eof))
                    } else {
                        Err(from_quick_xml(&err))
                    }
                }
            };
            match result {
                Ok(Some(ev)) => {
                    // A unit is complete: the next one gets a fresh size budget.
                    self.reader.get_mut().remaining = self.limits.max_stanza_bytes;
                    return Ok(ev);
                }
                Ok(None) => continue,
                Err(err) => {
                    self.failed = Some(err.clone());
                    return Err(err);
                }
            }
        }
    }
}

/// A buffered reader that refuses to let more than `remaining` bytes be
/// consumed before the budget is renewed.
///
/// quick-xml accumulates a whole tag or text run in memory before it returns
/// an event, so a limit checked on returned events would come too late: a
/// peer could send gigabytes without a `>`. Metering the bytes quick-xml
/// *consumes* bounds its buffer to the budget, and lets us tell a size
/// violation apart from other I/O errors.
struct Metered<R> {
    inner: BufReader<R>,
    remaining: usize,
    exceeded: bool,
    eof: bool,
}

impl<R> Metered<R> {
    fn new(inner: BufReader<R>, budget: usize) -> Self {
        Metered {
            inner,
            remaining: budget,
            exceeded: false,
            eof: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Metered<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // quick-xml only uses the AsyncBufRead side; this exists for the trait bound.
        let this = self.get_mut();
        let available = match Pin::new(&mut *this).poll_fill_buf(cx) {
            Poll::Ready(Ok(buf)) => buf,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        let n = available.len().min(out.remaining());
        out.put_slice(&available[..n]);
        Pin::new(this).consume(n);
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> AsyncBufRead for Metered<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            this.exceeded = true;
            return Poll::Ready(Err(io::Error::other("size limit exceeded")));
        }
        let limit = this.remaining;
        match Pin::new(&mut this.inner).poll_fill_buf(cx) {
            Poll::Ready(Ok(buf)) => {
                if buf.is_empty() {
                    this.eof = true;
                }
                Poll::Ready(Ok(&buf[..buf.len().min(limit)]))
            }
            other => other,
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.remaining = this.remaining.saturating_sub(amt);
        Pin::new(&mut this.inner).consume(amt);
    }
}
