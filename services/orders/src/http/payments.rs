//! Simulated payment intents: create, then confirm with the client secret.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::extract::{ValidJson, invalid};
use serde::{Deserialize, Serialize};
use serde_json::Number;
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::domain::intent::IntentStatus;
use crate::error::OrdersError;
use crate::state::AppState;
use holdfast_common::money;

fn valid_amount(amount: &Number) -> Result<(), ValidationError> {
    money::parse_minor(amount).map(|_| ()).map_err(invalid)
}

fn valid_currency(code: &str) -> Result<(), ValidationError> {
    if money::is_currency_code(code) {
        Ok(())
    } else {
        Err(invalid("must be a 3-letter ISO 4217 code"))
    }
}

fn valid_simulation(value: &str) -> Result<(), ValidationError> {
    if matches!(value, "decline" | "succeed") {
        Ok(())
    } else {
        Err(invalid("must be decline or succeed"))
    }
}

/// A (simulated) payment of `amount` in `currency`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct IntentRequest {
    /// Major units, at most 2 decimals; must equal the purchase total.
    #[validate(required(message = "required"), custom(function = "valid_amount"))]
    #[schema(required, value_type = f64, minimum = 0, example = 1000)]
    amount: Option<Number>,
    /// ISO 4217 code.
    #[validate(required(message = "required"), custom(function = "valid_currency"))]
    #[schema(required, value_type = String, min_length = 3, max_length = 3, example = "INR")]
    currency: Option<String>,
    /// `decline` makes the confirmation fail, to try that path.
    #[validate(custom(function = "valid_simulation"))]
    #[schema(required = false, value_type = String, pattern = "^(decline|succeed)$")]
    simulate: Option<String>,
}

/// The intent to confirm and its secret.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmRequest {
    #[validate(
        required(message = "required"),
        length(min = 1, max = 100, message = "invalid")
    )]
    #[schema(required, value_type = String, min_length = 1, max_length = 100)]
    payment_intent_id: Option<String>,
    #[validate(
        required(message = "required"),
        length(min = 1, max = 200, message = "invalid")
    )]
    #[schema(required, value_type = String, min_length = 1, max_length = 200)]
    client_secret: Option<String>,
}

/// A new intent, to be confirmed with its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentCreated {
    #[schema(example = "pi_3f2b8c1e5d4a4e8f")]
    payment_intent_id: String,
    client_secret: String,
    #[schema(example = "requires_confirmation")]
    status: &'static str,
}

/// A confirmed intent.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentConfirmed {
    payment_intent_id: String,
    #[schema(example = "succeeded")]
    status: &'static str,
}

/// Creates a simulated payment intent. At most `MAX_PAYMENT_INTENTS_PER_USER` unspent ones
/// live at a time; each expires after 15 minutes unless consumed.
#[utoipa::path(post, path = "/payments/intent", tag = "payments", request_body = IntentRequest,
    responses(
        (status = 201, description = "Created", body = IntentCreated),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 409, description = "`INTENT_LIMIT`", body = ErrorBody),
    ))]
pub async fn create_intent(
    State(state): State<AppState>,
    caller: AuthUser,
    ValidJson(request): ValidJson<IntentRequest>,
) -> Result<Response, OrdersError> {
    let amount = request
        .amount
        .as_ref()
        .and_then(|a| money::parse_minor(a).ok())
        .unwrap_or_default();
    let currency = request.currency.unwrap_or_default().to_ascii_uppercase();
    let decline = request.simulate.as_deref() == Some("decline");
    let intent = state
        .payments
        .create(caller.id(), amount, &currency, decline)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IntentCreated {
            payment_intent_id: intent.id,
            client_secret: intent.client_secret,
            status: "requires_confirmation",
        }),
    )
        .into_response())
}

/// Confirms a payment intent with its client secret.
#[utoipa::path(post, path = "/payments/confirm", tag = "payments", request_body = ConfirmRequest,
    responses(
        (status = 200, description = "Succeeded", body = IntentConfirmed),
        (status = 400, description = "`INVALID_JSON`, `VALIDATION_FAILED`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`; `INVALID_CLIENT_SECRET`", body = ErrorBody),
        (status = 402, description = "`PAYMENT_DECLINED`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such intent of yours", body = ErrorBody),
        (status = 409, description = "`PAYMENT_MISMATCH`: it already paid for an order", body = ErrorBody),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: AuthUser,
    ValidJson(request): ValidJson<ConfirmRequest>,
) -> Result<Response, OrdersError> {
    let id = request.payment_intent_id.unwrap_or_default();
    let intent = state
        .payments
        .owned(&id, caller.id())
        .await?
        .ok_or(OrdersError::IntentNotFound)?;
    if intent.client_secret != request.client_secret.unwrap_or_default() {
        return Err(OrdersError::BadClientSecret);
    }
    match intent.status {
        IntentStatus::Succeeded => {}
        IntentStatus::Consumed => return Err(OrdersError::IntentUsed),
        IntentStatus::Failed => return Err(OrdersError::PaymentDeclined),
        IntentStatus::RequiresConfirmation if intent.decline => {
            state
                .payments
                .set_status(intent, IntentStatus::Failed)
                .await?;
            return Err(OrdersError::PaymentDeclined);
        }
        IntentStatus::RequiresConfirmation => {
            state
                .payments
                .set_status(intent.clone(), IntentStatus::Succeeded)
                .await?;
        }
    }
    Ok(Json(IntentConfirmed {
        payment_intent_id: intent.id,
        status: "succeeded",
    })
    .into_response())
}
