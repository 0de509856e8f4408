//! The orders service's error type and how each case is answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::error::ApiError;
use holdfast_common::extract::{field_error, validation_failed};
use holdfast_common::kv::KvError;
use holdfast_common::when::format_millis;
use serde_json::json;
use validator::ValidationErrors;

use crate::domain::ids::SeatId;
use crate::store::RepoError;
use crate::store::holds::HoldError;

#[derive(Debug, thiserror::Error)]
#[error("the events service is unavailable: {0}")]
pub struct LayoutUnavailable(pub String);

#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    #[error("malformed event id: expected 24 hexadecimal characters")]
    InvalidEventId,
    #[error("{0}")]
    InvalidQuery(String),
    #[error("no such event")]
    EventNotFound,
    #[error("{0}")]
    InvalidSeats(String),
    #[error("seats not available: {}", .0.join(", "))]
    ConflictSeats(Vec<SeatId>),
    #[error("invalid {field}: {message}")]
    InvalidField {
        field: &'static str,
        message: String,
    },
    #[error("you already hold {0} holds on this event; release one first")]
    TooManyHolds(usize),
    #[error("the event's seat layout is being changed; retry shortly")]
    LayoutChanging,
    #[error("the event's seat layout changed since the hold was taken; hold the seats again")]
    LayoutChanged,
    /// Details, refresh and release of a hold that is gone or not the caller's (404).
    #[error("no such hold")]
    NoSuchHold,
    /// A purchase whose hold is gone, not the caller's, or not for these seats (409
    /// `HOLD_NOT_FOUND`).
    #[error("{0}")]
    HoldUnusable(&'static str),
    #[error("no such payment intent")]
    IntentNotFound,
    /// An order that does not exist or that the caller may not see (404).
    #[error("no such order")]
    NoSuchOrder,
    /// A ticket that does not exist or that the caller does not hold (404).
    #[error("no such ticket")]
    NoSuchTicket,
    /// The ticket was cancelled or reissued: it no longer admits anyone (409 `TICKET_REVOKED`).
    #[error("this ticket was cancelled: it no longer admits anyone")]
    TicketRevoked,
    /// A transfer the ticket or the event's policy does not allow (409).
    #[error("{}", transfer_refusal(.0))]
    TransferRefused(crate::domain::ticket::TransferRefusal),
    /// The ticket changed between its read and the write (409 `TICKET_CHANGED`).
    #[error("the ticket changed meanwhile (scanned, cancelled or transferred); read it again")]
    TicketChanged,
    /// The buyer tried to cancel seats whose tickets they gave away (409 `TICKET_TRANSFERRED`).
    #[error("these seats' tickets were transferred: {}; only the organizer can cancel them now", .0.join(", "))]
    TicketsTransferred(Vec<SeatId>),
    /// A scanner sent more scans or batches than its limit (429 `RATE_LIMITED`).
    #[error("too many scans from this scanner; slow down")]
    ScanRateLimited,
    /// An offline batch over its size limit (413 `BATCH_TOO_LARGE`).
    #[error("a batch holds at most {0} scans; split it")]
    BatchTooLarge(usize),
    /// The event has its most scanner devices (409 `DEVICE_LIMIT`).
    #[error("the event has {0} scanner devices; revoke one first")]
    TooManyDevices(usize),
    /// The buyer's cancellation window has closed (409 `CANCELLATION_CLOSED`).
    #[error("cancellations closed {0} hours before the event; ask the organizer")]
    CancellationClosed(u64),
    /// The event's start time cannot be read (the event is gone or its date is unreadable), so
    /// the buyer's cancellation window cannot be checked: refused rather than let open (409
    /// `CANCELLATION_UNVERIFIABLE`).
    #[error(
        "the event's start time cannot be read, so a cancellation cannot be checked against the cutoff; ask the organizer"
    )]
    CancellationUnverifiable,
    /// Enough seats are free to hold them now: no waitlist to join (409 `SEATS_AVAILABLE`,
    /// with how many in `details.available`).
    #[error("{0} seats are available: hold them instead of joining the waitlist")]
    SeatsAvailable(usize),
    /// Best available found nothing that fits; what is still available per category and
    /// section (`null` when not counted).
    #[error(
        "no seats fit the request: ask for fewer, another category or section, or allow a split"
    )]
    NoSeatsAvailable(serde_json::Value),
    /// The caller is not on the event's waitlist (404).
    #[error("you are not on this event's waitlist")]
    NotWaitlisted,
    /// Other cancellations of the order kept coming first (409 `CANCELLATION_IN_PROGRESS`).
    #[error("the order is being cancelled by another request; retry shortly")]
    CancellationBusy,
    /// Only the event's organizer or an admin may do this (403).
    #[error("only the event's organizer or an admin may see this")]
    NotOrganizer,
    #[error("you already have {0} unspent payment intents; use one or let one expire first")]
    TooManyIntents(usize),
    #[error("wrong client secret for this payment intent")]
    BadClientSecret,
    #[error("the payment was declined")]
    PaymentDeclined,
    #[error("{0}")]
    PaymentRequired(&'static str),
    /// The intent's amount or currency is not the purchase's.
    #[error("{0}")]
    PaymentMismatch(String),
    /// The intent already paid for an order (409 `PAYMENT_MISMATCH`).
    #[error("this payment already paid for an order")]
    IntentUsed,
    /// 409 `SEAT_ALREADY_RESERVED`.
    #[error("seats already sold: {}", .0.join(", "))]
    SeatsSold(Vec<SeatId>),
    #[error("a purchase with this Idempotency-Key is in progress; retry shortly")]
    IdempotencyInProgress,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    InvalidIdempotencyKey,
    /// The event has no admission queue (404).
    #[error("this event has no queue")]
    NoQueue,
    /// The caller is not in the event's queue (404).
    #[error("you are not in this event's queue")]
    NotInQueue,
    /// The queue has opened: only its pace can change (409 `QUEUE_OPEN`).
    #[error("the queue is open: pause it or change its rate instead")]
    QueueOpen,
    /// The queue does not take people before it opens (409 `QUEUE_NOT_OPEN`, with
    /// `details.opensAt`).
    #[error("the queue opens at {}; join then", holdfast_common::when::format_millis(*.0))]
    QueueNotOpen(i64),
    /// The queue asks every join for a proof of work (403 `PROOF_REQUIRED`, with
    /// `details.proofBits`).
    #[error(
        "this queue asks for a proof of work: a proof whose SHA-256 of \"eventId:userId:proof\" starts with {0} zero bits"
    )]
    ProofRequired(u8),
    /// Leaving after admission (409 `ALREADY_ADMITTED`).
    #[error("you were admitted: your admission is yours until it expires")]
    AlreadyAdmitted,
    /// The caller's place is not in yet (409 `NOT_ADMITTED_YET`, with `details.place` and
    /// `details.estimatedAdmissionAt`).
    #[error("your place is not in yet")]
    NotAdmittedYet {
        place: Option<u64>,
        estimate: Option<i64>,
    },
    /// A hold or purchase on a queued event without a valid admission (403
    /// `ADMISSION_REQUIRED`).
    #[error("{0}")]
    AdmissionRequired(&'static str),
    /// The caller's admission ran out; it is not renewed (403 `ADMISSION_EXPIRED`, with
    /// `details.expiredAt`).
    #[error("your admission expired at {}; it is not renewed", holdfast_common::when::format_millis(*.0))]
    AdmissionExpired(i64),
    #[error("invalid input")]
    Invalid(#[from] ValidationErrors),
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error(transparent)]
    Layout(#[from] LayoutUnavailable),
    #[error("TTL store: {0}")]
    Kv(#[from] KvError),
    #[error("order store: {0}")]
    Store(#[from] RepoError),
}

impl From<crate::store::payments::IntentError> for OrdersError {
    fn from(error: crate::store::payments::IntentError) -> Self {
        match error {
            crate::store::payments::IntentError::TooMany(n) => Self::TooManyIntents(n),
            crate::store::payments::IntentError::Store(e) => Self::Kv(e),
        }
    }
}

fn transfer_refusal(refusal: &crate::domain::ticket::TransferRefusal) -> String {
    use crate::domain::ticket::TransferRefusal;
    match refusal {
        TransferRefusal::Revoked => "this ticket was cancelled: it cannot be transferred".into(),
        TransferRefusal::Used => "this ticket has entered: it cannot be transferred".into(),
        TransferRefusal::Disabled => "the organizer does not allow transfers for this event".into(),
        TransferRefusal::Closed => "transfers for this event have closed".into(),
        TransferRefusal::Limit(n) => {
            format!("this ticket was transferred {n} times, the most allowed")
        }
    }
}

fn seats_error(status: StatusCode, code: &str, message: String, seats: &[SeatId]) -> ApiError {
    let mut error =
        ApiError::new(status, code, message).with_details(json!({ "conflicts": seats }));
    // Existing clients read the conflicts at the top level too.
    error.body.extra.insert("conflicts".into(), json!(seats));
    error
}

impl IntoResponse for OrdersError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let error = match self {
            Self::InvalidEventId => ApiError::bad_request("INVALID_ID", message),
            Self::InvalidQuery(_) => ApiError::bad_request("INVALID_QUERY", message),
            Self::InvalidField { field, message } => field_error(field, &message),
            Self::EventNotFound
            | Self::NoSuchHold
            | Self::IntentNotFound
            | Self::NoSuchOrder
            | Self::NoSuchTicket
            | Self::NotWaitlisted
            | Self::NoQueue
            | Self::NotInQueue => ApiError::not_found(message),
            Self::QueueOpen => ApiError::new(StatusCode::CONFLICT, "QUEUE_OPEN", message),
            Self::QueueNotOpen(opens_at) => {
                ApiError::new(StatusCode::CONFLICT, "QUEUE_NOT_OPEN", message)
                    .with_details(json!({ "opensAt": format_millis(opens_at) }))
            }
            Self::ProofRequired(bits) => {
                ApiError::new(StatusCode::FORBIDDEN, "PROOF_REQUIRED", message)
                    .with_details(json!({ "proofBits": bits }))
            }
            Self::AlreadyAdmitted => {
                ApiError::new(StatusCode::CONFLICT, "ALREADY_ADMITTED", message)
            }
            Self::NotAdmittedYet { place, estimate } => {
                ApiError::new(StatusCode::CONFLICT, "NOT_ADMITTED_YET", message).with_details(
                    json!({ "place": place, "estimatedAdmissionAt": estimate.map(format_millis) }),
                )
            }
            Self::AdmissionRequired(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "ADMISSION_REQUIRED", message)
            }
            Self::AdmissionExpired(expired_at) => {
                ApiError::new(StatusCode::FORBIDDEN, "ADMISSION_EXPIRED", message)
                    .with_details(json!({ "expiredAt": format_millis(expired_at) }))
            }
            Self::TicketRevoked => ApiError::new(StatusCode::CONFLICT, "TICKET_REVOKED", message),
            Self::TransferRefused(refusal) => {
                use crate::domain::ticket::TransferRefusal;
                let code = match refusal {
                    TransferRefusal::Revoked => "TICKET_REVOKED",
                    TransferRefusal::Used => "TICKET_USED",
                    TransferRefusal::Disabled => "TRANSFERS_DISABLED",
                    TransferRefusal::Closed => "TRANSFER_CLOSED",
                    TransferRefusal::Limit(_) => "TRANSFER_LIMIT",
                };
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            Self::TicketChanged => ApiError::new(StatusCode::CONFLICT, "TICKET_CHANGED", message),
            Self::TicketsTransferred(seats) => {
                seats_error(StatusCode::CONFLICT, "TICKET_TRANSFERRED", message, &seats)
            }
            Self::ScanRateLimited => {
                let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message);
                let mut response = error.into_response();
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("1"),
                );
                return response;
            }
            Self::BatchTooLarge(_) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "BATCH_TOO_LARGE", message)
            }
            Self::TooManyDevices(_) => ApiError::new(StatusCode::CONFLICT, "DEVICE_LIMIT", message),
            Self::CancellationClosed(_) => {
                ApiError::new(StatusCode::CONFLICT, "CANCELLATION_CLOSED", message)
            }
            Self::CancellationUnverifiable => {
                ApiError::new(StatusCode::CONFLICT, "CANCELLATION_UNVERIFIABLE", message)
            }
            Self::SeatsAvailable(available) => {
                ApiError::new(StatusCode::CONFLICT, "SEATS_AVAILABLE", message)
                    .with_details(json!({ "available": available }))
            }
            Self::CancellationBusy => {
                ApiError::new(StatusCode::CONFLICT, "CANCELLATION_IN_PROGRESS", message)
            }
            Self::NotOrganizer => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message),
            Self::InvalidSeats(_) => ApiError::bad_request("INVALID_SEATS", message),
            Self::ConflictSeats(seats) => {
                seats_error(StatusCode::CONFLICT, "CONFLICT_SEATS", message, &seats)
            }
            Self::TooManyHolds(_) => ApiError::new(StatusCode::CONFLICT, "HOLD_LIMIT", message),
            Self::NoSeatsAvailable(available) => {
                ApiError::new(StatusCode::CONFLICT, "NO_SEATS_AVAILABLE", message)
                    .with_details(json!({ "available": available }))
            }
            Self::TooManyIntents(_) => ApiError::new(StatusCode::CONFLICT, "INTENT_LIMIT", message),
            Self::LayoutChanging => ApiError::new(StatusCode::CONFLICT, "LAYOUT_CHANGING", message),
            Self::LayoutChanged => ApiError::new(StatusCode::CONFLICT, "LAYOUT_CHANGED", message),
            Self::HoldUnusable(_) => ApiError::new(StatusCode::CONFLICT, "HOLD_NOT_FOUND", message),
            Self::BadClientSecret => {
                ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CLIENT_SECRET", message)
            }
            Self::PaymentDeclined => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "PAYMENT_DECLINED", message)
            }
            Self::PaymentRequired(_) => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "PAYMENT_REQUIRED", message)
            }
            Self::PaymentMismatch(_) | Self::IntentUsed => {
                ApiError::new(StatusCode::CONFLICT, "PAYMENT_MISMATCH", message)
            }
            Self::SeatsSold(seats) => seats_error(
                StatusCode::CONFLICT,
                "SEAT_ALREADY_RESERVED",
                message,
                &seats,
            ),
            Self::IdempotencyInProgress => {
                ApiError::new(StatusCode::CONFLICT, "IDEMPOTENCY_IN_PROGRESS", message)
            }
            Self::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                message,
            ),
            Self::InvalidIdempotencyKey => {
                ApiError::bad_request("INVALID_IDEMPOTENCY_KEY", message)
            }
            Self::Invalid(errors) => validation_failed(errors),
            Self::Api(error) => error,
            Self::Layout(cause) => {
                tracing::error!(%cause, "event layouts unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UPSTREAM_UNAVAILABLE",
                    "events are unavailable; retry shortly",
                )
            }
            Self::Kv(KvError::Unavailable(cause)) => {
                tracing::error!(%cause, "TTL store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "holds are unavailable; retry shortly",
                )
            }
            Self::Kv(cause) => ApiError::internal(cause),
            Self::Store(cause) => ApiError::internal(cause),
        };
        error.into_response()
    }
}

impl From<HoldError> for OrdersError {
    fn from(error: HoldError) -> Self {
        match error {
            HoldError::Invalid(message) => Self::InvalidSeats(message),
            HoldError::Conflict(seats) => Self::ConflictSeats(seats),
            HoldError::TooManyHolds(n) => Self::TooManyHolds(n),
            HoldError::NoSeats => Self::NoSeatsAvailable(serde_json::Value::Null),
            // A layout that changed again right after it was read again is still changing.
            HoldError::LayoutChanging | HoldError::StaleLayout => Self::LayoutChanging,
            HoldError::Store(e) => Self::Kv(e),
            HoldError::Orders(e) => Self::Store(e),
        }
    }
}
