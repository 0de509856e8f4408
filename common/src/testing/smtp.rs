//! An SMTP server for tests: it speaks enough of RFC 5321 for a real client (lettre) to
//! deliver to it over TCP, keeps what it receives, and can be told to refuse mail for a
//! while (`451`, a transient failure) to exercise retries.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::sync::lock;

/// One mail as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed, with CRLF line ends.
    pub data: String,
}

impl ReceivedMail {
    /// The value of header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(current) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    current.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((field, rest)) = line.split_once(':')
                && field.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_string());
            }
        }
        value
    }

    /// The body, after the headers.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    /// The decoded body of the first MIME part whose `Content-Type` starts with
    /// `content_type` (`text/plain`, `text/html`, `image/png`, `text/calendar`), base64 and
    /// quoted-printable undone; for a mail of one part, its body.
    pub fn part(&self, content_type: &str) -> Option<Vec<u8>> {
        let is_type = |head: &str| {
            head.split("\r\n").any(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-type:")
                    .is_some_and(|v| v.trim().starts_with(content_type))
            })
        };
        let encoding = |head: &str| {
            head.split("\r\n")
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-transfer-encoding:")
                        .map(|v| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        // Every part: the headers after a boundary line, up to the next one.
        for chunk in self.data.split("\r\n--") {
            let Some((head, body)) = chunk.split_once("\r\n\r\n") else {
                continue;
            };
            if !is_type(head) {
                continue;
            }
            let body = body.split("\r\n--").next().unwrap_or(body);
            return Some(match encoding(head).as_str() {
                "base64" => {
                    use base64::Engine;
                    let compact: String = body.split_whitespace().collect();
                    base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .ok()?
                }
                "quoted-printable" => unquote(body),
                _ => body.as_bytes().to_vec(),
            });
        }
        None
    }

    /// [`Self::part`] as text.
    pub fn text_part(&self, content_type: &str) -> Option<String> {
        self.part(content_type)
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }
}

/// Quoted-printable decoded: soft line breaks joined, `=XX` bytes restored.
fn unquote(body: &str) -> Vec<u8> {
    let bytes = body.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<ReceivedMail>>,
    refusals_left: AtomicUsize,
    refused: AtomicUsize,
}

/// A running sink on a port of its own; it stops when dropped.
pub struct SmtpSink {
    /// `smtp://127.0.0.1:<port>`, for `SMTP_URL`.
    pub url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink on an ephemeral port.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let url = format!("smtp://{}", listener.local_addr().expect("its address"));
        let shared = Arc::new(Shared::default());
        let serving = shared.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, serving.clone()));
            }
        });
        Self {
            url,
            shared,
            server,
        }
    }

    /// Refuses the next `count` mails with `451` (the client may try again later).
    pub fn refuse_next(&self, count: usize) {
        self.shared.refusals_left.store(count, Ordering::SeqCst);
    }

    /// How many mails were refused so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every mail received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        lock(&self.shared.received).clone()
    }

    /// The mails received once there are at least `count`, or what there is after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One client connection: greeting, then command by command until `QUIT` or a hang-up.
async fn session(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                (from, to) = (String::new(), Vec::new());
                b"250 OK\r\n"
            }
            "MAIL" => {
                let refuse = shared
                    .refusals_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    shared.refused.fetch_add(1, Ordering::SeqCst);
                    b"451 4.3.0 try again later\r\n"
                } else {
                    from = address(&command);
                    b"250 OK\r\n"
                }
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let data = read_data(&mut lines).await?;
                lock(&shared.received).push(ReceivedMail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The address in `MAIL FROM:<a>` or `RCPT TO:<a>`.
fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_string())
        .unwrap_or_default()
}

/// The message after `DATA`, up to the line holding a single dot.
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(data);
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Ok(data);
        }
        data.push_str(content.strip_prefix('.').unwrap_or(content));
        data.push_str("\r\n");
    }
}
