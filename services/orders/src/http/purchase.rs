//! The purchase: the hold, the payment and the price checked, then one transaction writing the
//! order, its sold seats, its outbox message and (with an `Idempotency-Key`, see
//! [`crate::idempotency`]) its answer.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_common::auth::AuthUser;
use holdfast_common::bus::BusMessage;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::{ValidJson, field_error};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use validator::Validate;

use super::{event_id, may_use};
use crate::AppState;
use crate::domain::now_millis;
use crate::error::OrdersError;
use crate::idempotency;
use crate::payments::{Intent, IntentStatus};
use crate::store::board::Claim;
use crate::store::{NewPurchase, Order, OutboxMessage, PurchaseOutcome};
use holdfast_common::money;

/// How long a purchase keeps its hold alive at least, from its last check to its commit; longer
/// than a commit takes. A hold ending sooner is extended by this much, at most once per attempt.
const PURCHASE_CLAIM: Duration = Duration::from_secs(30);

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
    #[schema(value_type = String, min_length = 1, max_length = 100)]
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
    seat_ids: &'a [String],
    /// `reserved`: bought.
    #[schema(example = "reserved")]
    status: &'a str,
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
#[utoipa::path(post, path = "/purchase", tag = "orders", security(("bearer" = []), ("cookie" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters; the same key with the same body replays the first answer")),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "Bought (or replayed, with `Idempotent-Replayed: true`)", body = Purchased,
            headers(("idempotent-replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED` (also `paymentIntentId` missing for seats that are not free), `INVALID_ID`, `INVALID_IDEMPOTENCY_KEY`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`", body = ErrorBody),
        (status = 402, description = "`PAYMENT_REQUIRED`: no such intent of yours, or it has not succeeded", body = ErrorBody),
        (status = 403, description = "`CSRF_ORIGIN`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
        (status = 409, description = "`HOLD_NOT_FOUND`, `SEAT_ALREADY_RESERVED` (with `conflicts`), `PAYMENT_MISMATCH` (amount, currency, or already used), `LAYOUT_CHANGED`, `IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key came with another request", body = ErrorBody),
    ))]
pub async fn purchase(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    ValidJson(request): ValidJson<PurchaseRequest>,
) -> Result<Response, OrdersError> {
    let Some(key) = idempotency::key_of(&headers)? else {
        return buy(&state, &caller, &request, None).await;
    };
    let once = idempotency::Once::new(caller.id(), key, request_hash(&request));
    once.run(&state, || {
        buy(&state, &caller, &request, Some(once.clone()))
    })
    .await
}

/// The caller's succeeded, unused intent `intent_id` of exactly `total` in `currency`.
async fn paying_intent(
    state: &AppState,
    caller: &AuthUser,
    intent_id: &str,
    total: i64,
    currency: &str,
) -> Result<Intent, OrdersError> {
    let intent =
        state
            .payments
            .owned(intent_id, caller.id())
            .await?
            .ok_or(OrdersError::PaymentRequired(
                "no such payment intent of yours",
            ))?;
    match intent.status {
        IntentStatus::Succeeded => {}
        IntentStatus::Consumed => {
            return Err(OrdersError::PaymentMismatch(
                "this payment already paid for an order".into(),
            ));
        }
        IntentStatus::RequiresConfirmation | IntentStatus::Failed => {
            return Err(OrdersError::PaymentRequired(
                "the payment has not succeeded",
            ));
        }
    }
    if intent.amount_minor != total || intent.currency != currency {
        return Err(OrdersError::PaymentMismatch(format!(
            "the payment is {} {} but the seats cost {} {}",
            money::to_json(intent.amount_minor),
            intent.currency,
            money::to_json(total),
            currency
        )));
    }
    Ok(intent)
}

/// The purchase itself: checks the hold and the payment, then one transaction.
async fn buy(
    state: &AppState,
    caller: &AuthUser,
    request: &PurchaseRequest,
    idempotency: Option<idempotency::Once>,
) -> Result<Response, OrdersError> {
    let event_id = event_id(request.event_id.as_deref().unwrap_or_default())?;
    let hold_id = request.hold_id.clone().unwrap_or_default();
    let seat_ids = request.seat_ids.clone().unwrap_or_default();

    let hold = match state.holds.get(&hold_id).await? {
        Some(hold) if may_use(caller, &hold) => hold,
        _ => {
            return Err(OrdersError::HoldNotFound(
                "no such hold: it expired, was released, or is not yours",
            ));
        }
    };
    let wanted: BTreeSet<&String> = seat_ids.iter().collect();
    let held: BTreeSet<&String> = hold.seat_ids.iter().collect();
    if hold.event_id != event_id || wanted != held || wanted.len() != seat_ids.len() {
        return Err(OrdersError::HoldNotFound(
            "the hold is for other seats or another event",
        ));
    }
    let layout = state.layout(&event_id).await?;
    let seats = i64::try_from(seat_ids.len()).unwrap_or(i64::MAX);
    let total = layout.price_minor.saturating_mul(seats);
    let intent = match request.payment_intent_id.as_deref() {
        // Free seats need no payment.
        None if total == 0 => None,
        None => {
            return Err(
                field_error("paymentIntentId", "required: these seats are not free").into(),
            );
        }
        Some(intent_id) => {
            Some(paying_intent(state, caller, intent_id, total, &layout.currency).await?)
        }
    };
    // Claimed in the step that checks it, so the hold cannot run out (and its seats go to
    // someone else) between this check and the commit.
    match state.holds.claim(&hold, PURCHASE_CLAIM).await? {
        Claim::Claimed { .. } => {}
        Claim::Gone => return Err(OrdersError::HoldNotFound("the hold has expired")),
        Claim::StaleLayout => return Err(OrdersError::LayoutChanged),
    }

    let order_id = uuid::Uuid::new_v4().to_string();
    let order = Order {
        order_id: order_id.clone(),
        user_id: caller.id().to_string(),
        event_id: event_id.clone(),
        seat_ids: hold.seat_ids.clone(),
        amount_minor: total,
        currency: layout.currency.clone(),
        payment_intent_id: intent
            .as_ref()
            .map_or_else(|| Order::free_payment_id(&order_id), |i| i.id.clone()),
        status: "reserved".into(),
        created_at_ms: now_millis(),
    };
    // Strings and a list of strings: serialising them cannot fail.
    let body = serde_json::to_string(&Purchased {
        order_id: &order.order_id,
        event_id: &order.event_id,
        seat_ids: &order.seat_ids,
        status: &order.status,
    })
    .unwrap_or_default();
    let message = BusMessage::new(
        "order.purchased",
        json!({
            "orderId": order.order_id,
            "userId": order.user_id,
            "eventId": order.event_id,
            "seatIds": order.seat_ids,
            "amount": money::to_json(order.amount_minor),
            "currency": order.currency,
            "paymentIntentId": order.paid_with(),
        }),
    )
    .map_err(|e| OrdersError::Store(crate::store::RepoError::Corrupt(e.to_string())))?;
    let purchase = NewPurchase {
        idempotency: idempotency.as_ref().map(|once| {
            once.answer(
                StatusCode::CREATED,
                body.clone(),
                order.created_at_ms,
                state.settings.orders.idempotency_ttl,
            )
        }),
        outbox: OutboxMessage {
            id: message.message_id.to_string(),
            routing_key: message.routing_key.clone(),
            payload: serde_json::to_string(&message).unwrap_or_default(),
        },
        order,
    };
    match state.orders.purchase(&purchase).await? {
        PurchaseOutcome::Committed => {}
        PurchaseOutcome::SeatsTaken(seats) => {
            // The store knows better than the board: show those seats sold from now on.
            if let Err(error) = state.holds.board().mark_sold(&event_id, &seats).await {
                tracing::warn!(%error, "seats sold elsewhere not put on the seat board");
            }
            state.live.invalidate(&event_id);
            return Err(OrdersError::SeatAlreadyReserved(seats));
        }
        PurchaseOutcome::IntentUsed => {
            return Err(OrdersError::PaymentMismatch(
                "this payment already paid for an order".into(),
            ));
        }
        PurchaseOutcome::KeyUsed => {
            // Another attempt with the key committed first: answer what it answered.
            let stored = match &idempotency {
                Some(once) => once.stored_answer(state).await?,
                None => None,
            };
            return stored.ok_or(OrdersError::IdempotencyInProgress);
        }
    }
    state.metrics.purchases.inc();
    state.outbox_wake.notify_one();
    // The order is committed; what follows only tidies up, so failures are logged, not answered.
    // The seats join the board's sold set as the hold leaves it, in one step.
    if let Err(error) = state.holds.sell(&hold).await {
        tracing::warn!(%error, hold_id = %hold.hold_id, "sold seats not put on the seat board; it reloads them from the store when cold");
    }
    state.live.invalidate(&hold.event_id);
    if let Some(intent) = intent
        && let Err(error) = state
            .payments
            .set_status(intent, IntentStatus::Consumed)
            .await
    {
        tracing::warn!(%error, "payment intent not marked consumed; the order store still refuses its reuse");
    }
    let json = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    Ok((StatusCode::CREATED, json, body).into_response())
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
