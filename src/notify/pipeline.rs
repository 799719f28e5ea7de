//! SMTP command pipelining (RFC 2920) under lettre, on plain connections.
//!
//! lettre speaks SMTP one command at a time: MAIL FROM, wait for the reply, RCPT TO, wait, DATA,
//! wait, the message, the final dot, wait — five writes and four round trips a message, where
//! postfix's `smtp-source` needs two round trips. Measured (`perf`, `bench_e2e 30000`): lettre's
//! writes were ~21 % of the process's CPU, each one a TCP segment through the whole stack.
//!
//! [`Pipelined`] is the socket lettre is given instead of the bare TCP stream. It holds what lettre
//! writes and sends it when lettre next reads (every SMTP write is followed by reading a reply, so
//! nothing waits): the message and its final dot go out in one segment. And when the server's EHLO
//! reply offered `PIPELINING`, the pool announces each message's envelope ([`Pipe::announce`])
//! before lettre sends it; when lettre then writes that message's `MAIL FROM`, the `RCPT TO` and
//! `DATA` lines go out with it, in lettre's own words (lettre's `Rcpt` and `Data` commands), and
//! lettre's later writes of those lines are taken as sent — they must be exactly those bytes, or the
//! connection fails (and the pool drops it). The replies arrive in order and lettre reads them as
//! usual; a refused MAIL or RCPT fails the message as before, and the pool drops that connection, on
//! which replies may still be pending. Two round trips and two writes a message.
//!
//! Only on plain connections: under TLS this layer would see ciphertext (STARTTLS and implicit TLS
//! connections go as before).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncTokioStream;
use lettre::transport::smtp::commands::{Data, Rcpt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes of the server's first replies kept to learn whether it pipelines.
const GREETING_BYTES: usize = 8 << 10;

/// What the pool and the socket share.
#[derive(Debug, Default)]
struct State {
    /// The server's replies so far, until the first MAIL FROM decides.
    greeting: Vec<u8>,
    /// Whether the server offered PIPELINING (decided at the first MAIL FROM).
    pipelining: Option<bool>,
    /// The RCPT TO and DATA lines of the next message, sent with its MAIL FROM.
    announced: Option<Vec<u8>>,
    /// Lines sent ahead that lettre has still to write.
    ahead: Vec<u8>,
}

/// The pool's handle on a connection's socket.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pipe(Arc<Mutex<State>>);

impl Pipe {
    /// The envelope of the message lettre sends next on this connection.
    pub(crate) fn announce(&self, envelope: &Envelope) {
        let mut lines = Vec::new();
        for to in envelope.to() {
            lines.extend_from_slice(Rcpt::new(to.clone(), Vec::new()).to_string().as_bytes());
        }
        lines.extend_from_slice(Data.to_string().as_bytes());
        if let Ok(mut s) = self.0.lock() {
            s.announced = Some(lines);
        }
    }
}

/// The TCP stream lettre is given (see the module).
#[derive(Debug)]
pub(crate) struct Pipelined {
    tcp: TcpStream,
    /// Written by lettre, not sent yet.
    out: Vec<u8>,
    /// How much of `out` is sent.
    sent: usize,
    pipe: Pipe,
}

impl Pipelined {
    pub(crate) fn new(tcp: TcpStream) -> (Pipelined, Pipe) {
        let pipe = Pipe::default();
        (
            Pipelined {
                tcp,
                out: Vec::with_capacity(8 << 10),
                sent: 0,
                pipe: pipe.clone(),
            },
            pipe,
        )
    }

    /// Sends what is held.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

/// Whether an EHLO reply offers PIPELINING (`250-PIPELINING` or `250 PIPELINING`).
fn offers_pipelining(replies: &[u8]) -> bool {
    replies.split(|b| *b == b'\n').any(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        l.len() == 14 && l.starts_with(b"250") && matches!(l[3], b'-' | b' ') && l[4..].eq_ignore_ascii_case(b"PIPELINING")
    })
}

impl AsyncWrite for Pipelined {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut s = this.pipe.0.lock().map_err(|_| io::Error::other("pipelining state poisoned"))?;
        if !s.ahead.is_empty() {
            // lettre writes the lines sent ahead: they must be those.
            if !s.ahead.starts_with(buf) {
                return Poll::Ready(Err(io::Error::other(
                    "SMTP pipelining: the client wrote other than the RCPT TO and DATA lines sent ahead",
                )));
            }
            s.ahead.drain(..buf.len());
            return Poll::Ready(Ok(buf.len()));
        }
        this.out.extend_from_slice(buf);
        if buf.starts_with(b"MAIL FROM:") {
            let greeting = std::mem::take(&mut s.greeting);
            let pipelining = *s.pipelining.get_or_insert_with(|| offers_pipelining(&greeting));
            if let Some(lines) = s.announced.take()
                && pipelining
            {
                this.out.extend_from_slice(&lines);
                s.ahead = lines;
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    /// Held until lettre reads its reply (see the module).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl AsyncRead for Pipelined {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.tcp).poll_read(cx, buf))?;
        if let Ok(mut s) = self.pipe.0.lock()
            && s.pipelining.is_none()
            && s.greeting.len() < GREETING_BYTES
        {
            s.greeting.extend_from_slice(&buf.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncTokioStream for Pipelined {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_is_read_from_the_ehlo_reply() {
        assert!(offers_pipelining(
            b"220 sink ESMTP\r\n250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        ));
        assert!(offers_pipelining(b"250-sink\r\n250 pipelining\r\n"));
        assert!(!offers_pipelining(
            b"220 sink ESMTP\r\n250-sink\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"
        ));
        assert!(!offers_pipelining(b"250-sink\r\n250-XPIPELININGX\r\n"));
    }
}
