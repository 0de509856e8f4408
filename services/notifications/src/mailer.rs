//! Sends one logged mail: over SMTP (`SMTP_URL`), or, in development, to an mbox file.
//!
//! The file sink appends every mail to `DATA_DIR/mail.mbox` (readable with `less`, `mutt -f`
//! or any mail client that opens mbox files) and logs a line per mail, so the embedded profile
//! shows what would have been sent without a mail server. Production refuses it (see
//! `Settings`).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use holdfast_common::config::Settings;
use holdfast_common::sync::lock;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::NotifyError;
use crate::store::Delivery;

/// The longest one SMTP exchange may take; the claim's lease outlasts it.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where mail goes.
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        /// The server, without credentials, for logs.
        server: String,
    },
    File {
        path: PathBuf,
        from: Mailbox,
        /// One writer at a time, so that mails do not interleave.
        writing: std::sync::Arc<std::sync::Mutex<()>>,
    },
}

impl Mailer {
    /// The SMTP transport `SMTP_URL` describes, or the file sink under `DATA_DIR` without it.
    pub fn from_settings(settings: &Settings) -> Result<Self, NotifyError> {
        let from: Mailbox = settings
            .notifications
            .mail_from
            .parse()
            .map_err(|e| NotifyError::Config(format!("MAIL_FROM: {e}")))?;
        Ok(match &settings.notifications.smtp_url {
            Some(url) => Self::Smtp {
                transport: AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| NotifyError::Config(format!("SMTP_URL: {e}")))?
                    .timeout(Some(SEND_TIMEOUT))
                    .build(),
                from,
                server: server_of(url),
            },
            None => Self::File {
                path: settings.data_dir.join("mail.mbox"),
                from,
                writing: Default::default(),
            },
        })
    }

    /// Where mail goes, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { server, .. } => format!("smtp {server}"),
            Self::File { path, .. } => format!("file {}", path.display()),
        }
    }

    /// Sends `delivery`'s mail once. Its `Message-ID` is derived from the bus message, so a
    /// mail sent twice (a sender that died after sending) is recognisably the same mail.
    pub async fn send(&self, delivery: &Delivery) -> Result<(), NotifyError> {
        let (Self::Smtp { from, .. } | Self::File { from, .. }) = self;
        let to: Mailbox = delivery.recipient.parse().map_err(|e| {
            NotifyError::permanent(format!("recipient {:?}: {e}", delivery.recipient))
        })?;
        let builder = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&delivery.subject)
            .message_id(Some(format!("<{}@holdfast>", delivery.message_id)));
        let message = match &delivery.html {
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(delivery.body.clone()),
            Some(html) => builder.multipart(mime_parts(delivery, html)?),
        }
        .map_err(NotifyError::permanent)?;
        match self {
            Self::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(NotifyError::transient),
            Self::File { path, writing, .. } => {
                let (path, writing) = (path.clone(), writing.clone());
                let entry = mbox_entry(&message.formatted());
                tokio::task::spawn_blocking(move || {
                    let _one_writer = lock(&writing);
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .and_then(|mut file| file.write_all(entry.as_bytes()))
                })
                .await
                .map_err(NotifyError::transient)?
                .map_err(NotifyError::transient)?;
                tracing::info!(
                    to = %delivery.recipient,
                    subject = %delivery.subject,
                    "mail written to the file sink"
                );
                Ok(())
            }
        }
    }
}

/// `multipart/mixed`: the text and HTML alternatives with the HTML's inline images
/// (`multipart/related`), then the attachments.
fn mime_parts(delivery: &Delivery, html: &str) -> Result<MultiPart, NotifyError> {
    let mut related = MultiPart::related().multipart(MultiPart::alternative_plain_html(
        delivery.body.clone(),
        html.to_string(),
    ));
    let mut attached = Vec::new();
    for file in &delivery.attachments {
        let bytes = file.bytes().ok_or_else(|| {
            NotifyError::permanent(format!("attachment {} is not base64", file.filename))
        })?;
        let content_type =
            ContentType::parse(&file.content_type).map_err(NotifyError::permanent)?;
        match &file.content_id {
            Some(cid) => {
                related = related
                    .singlepart(Attachment::new_inline(cid.clone()).body(bytes, content_type));
            }
            None => attached.push(Attachment::new(file.filename.clone()).body(bytes, content_type)),
        }
    }
    let mut mixed = MultiPart::mixed().multipart(related);
    for part in attached {
        mixed = mixed.singlepart(part);
    }
    Ok(mixed)
}

/// `host:port` of an SMTP URL, without scheme, credentials or parameters.
fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_string()
}

/// One mbox entry: the `From ` separator line, then the message with LF line ends, its lines
/// that start with `From ` quoted, then a blank line.
fn mbox_entry(formatted: &[u8]) -> String {
    let text = String::from_utf8_lossy(formatted).replace("\r\n", "\n");
    let mut entry = format!(
        "From holdfast {}\n",
        jiff::Timestamp::now().strftime("%a %b %e %H:%M:%S %Y")
    );
    for line in text.lines() {
        if line.starts_with("From ") {
            entry.push('>');
        }
        entry.push_str(line);
        entry.push('\n');
    }
    entry.push('\n');
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_show_the_server_without_credentials() {
        assert_eq!(
            server_of("smtps://user:p%40ss@smtp.example.com:465"),
            "smtp.example.com:465"
        );
        assert_eq!(server_of("smtp://relay:587?tls=required"), "relay:587");
        assert_eq!(server_of("smtp://relay/ehlo.example.com"), "relay");
    }

    #[test]
    fn mbox_entries_quote_from_lines() {
        let entry = mbox_entry(b"Subject: hi\r\n\r\nFrom here on\r\nbye\r\n");
        assert!(entry.starts_with("From holdfast "), "{entry}");
        assert!(
            entry.ends_with("Subject: hi\n\n>From here on\nbye\n\n"),
            "{entry}"
        );
    }
}
