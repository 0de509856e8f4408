//! Log output: readable lines by default, one JSON object per line with `LOG_FORMAT=json`.
//!
//! Each request runs inside a span carrying its request id (see [`crate::middleware`]), so every
//! line logged while handling it names the request. `RUST_LOG` filters as usual (default `info`).
//!
//! The access log (one line per answered request, target [`ACCESS_TARGET`]) is written by
//! [`access`] straight into the same output, in the same format, without going through a
//! tracing event: formatting an event with its span context cost an eighth of the gateway's
//! instructions per request. `RUST_LOG` still decides whether it is written.
//!
//! Lines are written in batches: a request thread appends its formatted line to a shared buffer
//! (no system call, nobody woken), and a writer thread writes the buffer out every
//! [`FLUSH_INTERVAL`]. At thousands of requests per second one access-log line per request then
//! costs a memory copy instead of a write and a thread wake-up each. Nothing is dropped: past
//! [`MAX_BUFFERED`] bytes the logging thread writes the batch out itself, and the rest is written
//! when the [`LogGuard`] drops at exit.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;
use crate::sync::lock;

/// How long a line may wait in the buffer before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// How much may wait in the buffer before the logging thread writes it out itself.
pub const MAX_BUFFERED: usize = 1024 * 1024;

/// Keeps the writer thread running; dropping it writes out what is still buffered.
#[must_use = "lines still buffered when the guard drops are written out; keep it until exit"]
#[derive(Default)]
pub struct LogGuard {
    stop: Option<mpsc::Sender<()>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Installs the global subscriber. Calling it again (tests, the launcher) is harmless.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = BatchedOutput::new(unbuffered_stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(output.clone());
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    if installed.is_err() {
        return LogGuard::default();
    }
    let _ = ACCESS_LOG.set((output.clone(), format));
    let (stop, stopped) = mpsc::channel::<()>();
    let writer = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            // Wakes every interval; a dropped guard disconnects the channel for a last flush.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(FLUSH_INTERVAL) {
                output.flush_batch();
            }
            output.flush_batch();
        })
        .ok();
    LogGuard {
        stop: Some(stop),
        writer,
    }
}

/// Standard output as a plain file: the standard library's handle writes every line at once.
fn unbuffered_stdout() -> Box<dyn Write + Send> {
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(std::io::stdout()),
    }
}

/// Lines waiting for the writer, and where they go. The output lock is taken before the
/// buffer's whenever both are held, so batches reach the output in the order they were logged.
#[derive(Clone)]
struct BatchedOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
    output: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl BatchedOutput {
    fn new(output: Box<dyn Write + Send>) -> Self {
        Self {
            buffer: Arc::new(Mutex::new(Vec::with_capacity(64 * 1024))),
            output: Arc::new(Mutex::new(output)),
        }
    }

    /// Writes out everything buffered so far.
    fn flush_batch(&self) {
        let mut output = lock(&self.output);
        let batch = {
            let mut buffer = lock(&self.buffer);
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(64 * 1024))
        };
        // Logging has nowhere to report its own failure; a closed output loses the lines.
        let _ = output.write_all(&batch).and_then(|()| output.flush());
    }
}

impl BatchedOutput {
    /// Appends `line` to the batch (writing the batch out itself when it is full).
    fn push(&self, line: &[u8]) {
        let full = {
            let mut buffer = lock(&self.buffer);
            buffer.extend_from_slice(line);
            buffer.len() >= MAX_BUFFERED
        };
        if full {
            self.flush_batch();
        }
    }
}

impl Write for BatchedOutput {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedOutput {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The target of access lines: `RUST_LOG=holdfast::access=off` keeps them out of the log.
pub const ACCESS_TARGET: &str = "holdfast::access";

/// The output and format [`init`] installed, for [`access`].
static ACCESS_LOG: OnceLock<(BatchedOutput, LogFormat)> = OnceLock::new();

/// One answered request, as the access log records it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Access<'a> {
    #[serde(skip)]
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency_ms: f64,
}

/// Logs `record` at INFO under [`ACCESS_TARGET`], unless `RUST_LOG` filters that out.
pub fn access(record: &Access) {
    if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
        return;
    }
    let Some((output, format)) = ACCESS_LOG.get() else {
        // A subscriber that is not ours (a test's): an ordinary event.
        tracing::info!(target: ACCESS_TARGET, request_id = record.request_id,
            method = record.method, path = record.path, status = record.status,
            latency_ms = record.latency_ms, "answered");
        return;
    };
    let mut line = Vec::with_capacity(256);
    access_line(&mut line, *format, &jiff::Timestamp::now(), record);
    output.push(&line);
}

/// The access line of `record` at `now`, shaped like the subscriber's own lines: the compact
/// text format, or its JSON with the request id in `span`.
fn access_line(line: &mut Vec<u8>, format: LogFormat, now: &jiff::Timestamp, record: &Access) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail; serialising plain strings and numbers neither.
    match format {
        LogFormat::Pretty => {
            let _ = writeln!(
                line,
                "{now:.6}  INFO request{{request_id={}}}: {ACCESS_TARGET}: answered method={} \
                 path={} status={} latency_ms={:.3}",
                record.request_id,
                record.method,
                record.path.escape_debug(),
                record.status,
                record.latency_ms
            );
        }
        LogFormat::Json => {
            #[derive(Serialize)]
            struct Span<'a> {
                request_id: &'a str,
                name: &'static str,
            }
            #[derive(Serialize)]
            struct Fields<'a> {
                message: &'static str,
                #[serde(flatten)]
                access: &'a Access<'a>,
            }
            #[derive(Serialize)]
            struct Line<'a> {
                timestamp: String,
                level: &'static str,
                fields: Fields<'a>,
                target: &'static str,
                span: Span<'a>,
            }
            let entry = Line {
                timestamp: format!("{now:.6}"),
                level: "INFO",
                fields: Fields {
                    message: "answered",
                    access: record,
                },
                target: ACCESS_TARGET,
                span: Span {
                    request_id: record.request_id,
                    name: "request",
                },
            };
            let _ = serde_json::to_writer(&mut *line, &entry);
            line.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Access<'static> {
        Access {
            request_id: "req-1",
            method: "GET",
            path: "/api/events\"x",
            status: 200,
            latency_ms: 1.23456,
        }
    }

    #[test]
    fn access_lines_are_one_line_in_either_format() {
        let now: jiff::Timestamp = "2026-11-23T01:02:03.456789Z".parse().unwrap();
        let mut text = Vec::new();
        access_line(&mut text, LogFormat::Pretty, &now, &record());
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "2026-11-23T01:02:03.456789Z  INFO request{request_id=req-1}: holdfast::access: \
             answered method=GET path=/api/events\\\"x status=200 latency_ms=1.235\n"
        );
        let mut json = Vec::new();
        access_line(&mut json, LogFormat::Json, &now, &record());
        assert_eq!(json.iter().filter(|&&b| b == b'\n').count(), 1);
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "timestamp": "2026-11-23T01:02:03.456789Z",
                "level": "INFO",
                "fields": {"message": "answered", "method": "GET", "path": "/api/events\"x",
                    "status": 200, "latency_ms": 1.23456},
                "target": "holdfast::access",
                "span": {"request_id": "req-1", "name": "request"},
            })
        );
    }

    /// An output that records what reaches it and in how many writes.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_the_output_in_one_write_per_batch_and_in_order() {
        let recorded = Recorded::default();
        let mut batched = BatchedOutput::new(Box::new(recorded.clone()));
        for i in 0..1000 {
            batched.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        assert!(recorded.0.lock().unwrap().is_empty(), "nothing written yet");
        batched.flush_batch();
        batched.flush_batch();
        let writes = recorded.0.lock().unwrap().clone();
        assert_eq!(writes.len(), 1);
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(writes[0].clone()).unwrap(), expected);
    }

    #[test]
    fn a_full_buffer_is_written_by_the_logging_thread() {
        let recorded = Recorded::default();
        let mut batched = BatchedOutput::new(Box::new(recorded.clone()));
        let line = vec![b'x'; 1000];
        let lines = MAX_BUFFERED / line.len() + 1;
        for _ in 0..lines {
            batched.write_all(&line).unwrap();
        }
        let written: usize = recorded.0.lock().unwrap().iter().map(Vec::len).sum();
        assert_eq!(
            written,
            lines * line.len(),
            "written without the writer thread"
        );
    }
}
