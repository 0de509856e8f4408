//! `POST /purchase`: parses the request, hands it to [`crate::checkout`] (with its
//! `Idempotency-Key`, through [`crate::idempotency`]) and answers.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::ValidJson;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use validator::Validate;

use super::event_id;
use super::queue::AdmissionPass;
use crate::checkout::{self, Outcome, Purchase, Receipt};
use crate::domain::ids::{HoldId, SeatId};
use crate::domain::order::{Order, OrderStatus};
use crate::error::OrdersError;
use crate::idempotency::{self, Once};
use crate::state::AppState;

/// The held seats to buy and the payment for them.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseRequest {
    #[validate(required(message = "required"))]
    #[schema(required, value_type = String, example = "6650c0ffee0000000000abcd")]
    event_id: Option<String>,
    #[validate(required(message = "required"))]
    #[schema(required, value_type = String)]
    hold_id: Option<String>,
    /// Exactly the seats of the hold.
    #[validate(
        required(message = "required"),
        length(min = 1, max = 100, message = "must list 1 to 100 seats")
    )]
    #[schema(required, value_type = Vec<String>, min_items = 1, max_items = 100, example = json!(["R1-S1", "R1-S2"]))]
    seat_ids: Option<Vec<String>>,
    /// A succeeded intent of exactly `price × seats`; not needed (and refused unless it is of 0)
    /// when the seats are free.
    #[validate(length(min = 1, max = 100, message = "must be 1 to 100 characters"))]
    #[schema(required = false, value_type = String, min_length = 1, max_length = 100)]
    payment_intent_id: Option<String>,
}

/// A new order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Purchased<'a> {
    /// A UUID.
    #[schema(example = "0b6c1a52-8a0e-4c55-9d1f-1f1b2c3d4e5f")]
    order_id: &'a str,
    event_id: &'a str,
    seat_ids: Vec<&'a str>,
    status: OrderStatus,
}

/// A fingerprint of what was asked, insensitive to field order, formatting and the order in
/// which the seats are listed.
fn request_hash(request: &PurchaseRequest) -> String {
    let mut seat_ids = request.seat_ids.clone().unwrap_or_default();
    seat_ids.sort_unstable();
    let canonical = serde_json::to_vec(&(
        &request.event_id,
        &request.hold_id,
        seat_ids,
        &request.payment_intent_id,
    ))
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical))
}

/// Buys the seats of a hold, paid by a succeeded intent (none for free seats): the order, its
/// sold seats and its announcement are written in one transaction. With an `Idempotency-Key`
/// a retry answers the first answer again, with `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/purchase", tag = "orders",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; the same key with the same body replays the first answer"),
        ("Admission-Pass" = Option<String>, Header, description = "The buyer's admission, on an event sold through an admission queue")),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "Bought (or replayed, with `Idempotent-Replayed: true`)", body = Purchased,
            headers(("idempotent-replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` (also `paymentIntentId` missing for seats that are not free), `INVALID_ID`, `INVALID_IDEMPOTENCY_KEY`", body = ErrorBody),
        (status = 402, description = "`PAYMENT_REQUIRED`: no such intent of yours, or it has not succeeded", body = ErrorBody),
        (status = 403, description = "`ADMISSION_REQUIRED`, `ADMISSION_EXPIRED` (with `details.expiredAt`): the event sells through an admission queue", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`HOLD_NOT_FOUND`, `SEAT_ALREADY_RESERVED` (with `conflicts`), `PAYMENT_MISMATCH` (amount, currency, or already used), `LAYOUT_CHANGED`, `IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key came with another request", body = ErrorBody),
    ))]
pub async fn purchase(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    pass: AdmissionPass,
    ValidJson(request): ValidJson<PurchaseRequest>,
) -> Result<Response, OrdersError> {
    let pass = pass.as_deref();
    let Some(key) = idempotency::key_of(&headers)? else {
        return buy(&state, &caller, &request, pass, None).await;
    };
    let once = Once::new(caller.id(), key, request_hash(&request));
    once.run(&state.idempotency, || {
        buy(&state, &caller, &request, pass, Some(&once))
    })
    .await
}

/// The answer to a new order (stored with it when the purchase is idempotent).
fn answer(order: &Order) -> String {
    // Strings and a list of strings: serialising them cannot fail.
    serde_json::to_string(&Purchased {
        order_id: &order.order_id,
        event_id: &order.event_id,
        seat_ids: SeatId::strs(&order.seat_ids),
        status: order.status,
    })
    .unwrap_or_default()
}

/// Parses the request, buys, answers.
async fn buy(
    state: &AppState,
    caller: &AuthUser,
    request: &PurchaseRequest,
    pass: Option<&str>,
    once: Option<&Once>,
) -> Result<Response, OrdersError> {
    let purchase = Purchase {
        event_id: event_id(request.event_id.as_deref().unwrap_or_default())?,
        hold_id: HoldId::named(request.hold_id.as_deref().unwrap_or_default()),
        seat_ids: SeatId::all(request.seat_ids.as_deref().unwrap_or_default()),
        payment_intent_id: request.payment_intent_id.clone(),
        admission_pass: pass.map(str::to_string),
    };
    let receipt = once.map(|once| Receipt {
        once,
        status: StatusCode::CREATED,
        answer,
    });
    match checkout::buy(&state.checkout, caller, &purchase, receipt).await? {
        Outcome::Bought(order) => {
            let json = [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )];
            Ok((StatusCode::CREATED, json, answer(&order)).into_response())
        }
        Outcome::AnsweredByAnotherAttempt => match once {
            Some(once) => once
                .stored_answer(&state.idempotency)
                .await?
                .ok_or(OrdersError::IdempotencyInProgress),
            None => Err(OrdersError::IdempotencyInProgress),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(seats: &[&str], intent: &str) -> PurchaseRequest {
        PurchaseRequest {
            event_id: Some("e".into()),
            hold_id: Some("h".into()),
            seat_ids: Some(seats.iter().map(|s| s.to_string()).collect()),
            payment_intent_id: Some(intent.into()),
        }
    }

    #[test]
    fn the_fingerprint_ignores_seat_order_but_not_content() {
        let a = request_hash(&request(&["R1-S1", "R1-S2"], "pi_1"));
        assert_eq!(a, request_hash(&request(&["R1-S2", "R1-S1"], "pi_1")));
        assert_ne!(a, request_hash(&request(&["R1-S1", "R1-S3"], "pi_1")));
        assert_ne!(a, request_hash(&request(&["R1-S1", "R1-S2"], "pi_2")));
    }
}
