//! A keep-alive HTTP/1.1 connection that writes prepared requests and reads only what it must of
//! the answers (status, then the body by its length or chunks), as wrk does.
//!
//! The scenarios that measure a request rate run client and server on the same two cores, so
//! every cycle the client spends is one the server does not get. reqwest builds a URL, a header
//! map and a JSON value per request and hands the request to a connection task; this writes one
//! buffer and reads into another, which leaves the cores to the server being measured.

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One client connection to the gateway.
pub struct Connection {
    stream: TcpStream,
    host: String,
    request: Vec<u8>,
    answer: Vec<u8>,
}

impl Connection {
    /// Connects to the `http://host:port` of `base_url`.
    pub async fn open(base_url: &str) -> anyhow::Result<Self> {
        let host = base_url
            .strip_prefix("http://")
            .context("only http:// URLs are supported")?
            .trim_end_matches('/')
            .to_string();
        if host.contains('/') {
            bail!("the URL must not have a path: {base_url}");
        }
        let stream = TcpStream::connect(&host)
            .await
            .with_context(|| format!("cannot connect to {host}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            host,
            request: Vec::with_capacity(1024),
            answer: Vec::with_capacity(4096),
        })
    }

    /// `POST {path}` with a JSON `body` and a bearer token; answers the status code.
    pub async fn post_json(
        &mut self,
        path: &str,
        bearer: &str,
        body: &[u8],
    ) -> anyhow::Result<u16> {
        use std::io::Write;
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        )?;
        self.request.extend_from_slice(body);
        self.stream.write_all(&self.request).await?;
        self.read_answer().await
    }

    /// `GET {path}` with a bearer token; answers the status code.
    pub async fn get(&mut self, path: &str, bearer: &str) -> anyhow::Result<u16> {
        use std::io::Write;
        self.request.clear();
        write!(
            self.request,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\n\r\n",
            self.host,
        )?;
        self.stream.write_all(&self.request).await?;
        self.read_answer().await
    }

    /// The unsigned integer after `"{field}":` in the last answer, if there is one.
    pub fn number_after(&self, field: &str) -> Option<u64> {
        let needle = format!("\"{field}\":");
        let at = find(&self.answer, needle.as_bytes())? + needle.len();
        let digits: Vec<u8> = self.answer[at..]
            .iter()
            .copied()
            .take_while(u8::is_ascii_digit)
            .collect();
        std::str::from_utf8(&digits).ok()?.parse().ok()
    }

    /// Whether the last answer (head or body) contains `needle`, such as an error code.
    pub fn answered(&self, needle: &[u8]) -> bool {
        find(&self.answer, needle).is_some()
    }

    /// Reads one whole answer; answers its status code.
    async fn read_answer(&mut self) -> anyhow::Result<u16> {
        self.answer.clear();
        let head_end = loop {
            if let Some(at) = find(&self.answer, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.answer[..head_end]).context("answer head")?;
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok())
            .context("malformed status line")?;
        let (mut length, mut chunked) = (0, false);
        for (name, value) in lines.filter_map(|line| line.split_once(':')) {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().context("content-length")?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
        if chunked {
            self.read_chunks(head_end).await?;
        } else {
            while self.answer.len() < head_end + length {
                self.fill().await?;
            }
        }
        Ok(status)
    }

    /// Reads a chunked body starting at `at` up to its last chunk (trailers are not expected).
    async fn read_chunks(&mut self, mut at: usize) -> anyhow::Result<()> {
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.answer[at..], b"\r\n") {
                    break at + end;
                }
                self.fill().await?;
            };
            let size_text = std::str::from_utf8(&self.answer[at..line_end])?;
            let size_text = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).context("chunk size")?;
            // The chunk, then its CRLF (the last, empty chunk is followed by one CRLF too).
            at = line_end + 2 + size + 2;
            while self.answer.len() < at {
                self.fill().await?;
            }
            if size == 0 {
                return Ok(());
            }
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        self.answer.reserve(4096);
        if self.stream.read_buf(&mut self.answer).await? == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that answers each request with the next of `answers`, and records what it got.
    async fn server(answers: Vec<&'static str>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            for answer in answers {
                let mut buffer = [0u8; 4096];
                let n = socket.read(&mut buffer).await.unwrap();
                received.extend_from_slice(&buffer[..n]);
                // Sent in two writes, so the client has to read more than once.
                let (head, rest) = answer.split_at(answer.len() / 2);
                socket.write_all(head.as_bytes()).await.unwrap();
                socket.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                socket.write_all(rest.as_bytes()).await.unwrap();
            }
            received
        });
        (url, task)
    }

    #[tokio::test]
    async fn answers_by_length_and_by_chunks_are_read_whole_on_one_connection() {
        let (url, task) = server(vec![
            "HTTP/1.1 201 Created\r\ncontent-length: 12\r\n\r\n{\"place\":12}",
            "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let mut connection = Connection::open(&url).await.unwrap();
        let body = br#"{"a":1}"#;
        assert_eq!(connection.number_after("a"), None);
        assert_eq!(connection.post_json("/x", "t0k", body).await.unwrap(), 201);
        assert_eq!(connection.number_after("place"), Some(12));
        assert_eq!(connection.post_json("/y", "t0k", body).await.unwrap(), 409);
        assert_eq!(connection.get("/z", "t0k").await.unwrap(), 200);
        let received = String::from_utf8(task.await.unwrap()).unwrap();
        assert!(received.starts_with("POST /x HTTP/1.1\r\nHost: 127.0.0.1:"));
        assert!(received.contains("Authorization: Bearer t0k\r\n"));
        assert!(received.contains("Content-Length: 7\r\n\r\n{\"a\":1}POST /y"));
        assert!(received.contains("GET /z HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error_not_a_hang() {
        let (url, task) = server(vec![]).await;
        let mut connection = Connection::open(&url).await.unwrap();
        task.await.unwrap();
        assert!(connection.post_json("/x", "t", b"{}").await.is_err());
    }
}
