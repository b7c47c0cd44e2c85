//! A reader that yields some bytes before those of the connection.
//!
//! Only the reference proxy's `process-pipelined-starttls` fault uses a
//! non-empty prefix: it feeds clear-text bytes received after `<starttls/>`
//! into the encrypted stream, which is precisely what RFC 6120 §5.4.3.3
//! forbids. Correct code always runs with an empty prefix.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

pub struct Prefixed<R> {
    prefix: Vec<u8>,
    pos: usize,
    pub(super) inner: R,
}

impl<R> Prefixed<R> {
    pub fn new(prefix: Vec<u8>, inner: R) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }

    /// Prefix bytes not read yet.
    pub fn unread(&self) -> &[u8] {
        &self.prefix[self.pos..]
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Prefixed<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let rest = &this.prefix[this.pos..];
            let n = rest.len().min(out.remaining());
            out.put_slice(&rest[..n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}
