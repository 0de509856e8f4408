//! The notifications service's error type. It answers no API requests, so its errors end in
//! logs, in the delivery log's `lastError`, and in start-up failures.

use holdfast_common::docstore::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] holdfast_common::bus::BusError),
    /// `SMTP_URL` or `MAIL_FROM` cannot be used.
    #[error("{0}")]
    Config(String),
    /// One mail could not be sent; `permanent` when trying again cannot help (an address
    /// that is not one).
    #[error("{reason}")]
    Send { reason: String, permanent: bool },
}

impl NotifyError {
    /// A failure to send that a later attempt may overcome.
    pub fn transient(reason: impl ToString) -> Self {
        Self::Send {
            reason: reason.to_string(),
            permanent: false,
        }
    }

    /// A failure to send that no retry can overcome.
    pub fn permanent(reason: impl ToString) -> Self {
        Self::Send {
            reason: reason.to_string(),
            permanent: true,
        }
    }

    /// Whether retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::Send {
                permanent: true,
                ..
            }
        )
    }
}
