//! Log output: readable lines by default, one JSON object per line with `LOG_FORMAT=json`.
//!
//! Each request runs inside a span carrying its request id (see [`crate::middleware`]), so every
//! line logged while handling it names the request. `RUST_LOG` filters as usual (default `info`).
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
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

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
        let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        let batch = {
            let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
            if buffer.is_empty() {
                return;
            }
            std::mem::replace(&mut *buffer, Vec::with_capacity(64 * 1024))
        };
        // Logging has nowhere to report its own failure; a closed output loses the lines.
        let _ = output.write_all(&batch).and_then(|()| output.flush());
    }
}

impl Write for BatchedOutput {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
            buffer.extend_from_slice(line);
            buffer.len() >= MAX_BUFFERED
        };
        if full {
            self.flush_batch();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
