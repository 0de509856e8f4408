//! Simulated payment intents: create, then confirm with the client secret.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::extract::{ValidJson, invalid};
use serde::Deserialize;
use serde_json::{Number, json};
use validator::{Validate, ValidationError};

use crate::AppState;
use crate::error::OrdersError;
use crate::payments::IntentStatus;
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

#[derive(Debug, Deserialize, Validate)]
pub struct IntentRequest {
    #[validate(required(message = "required"), custom(function = "valid_amount"))]
    amount: Option<Number>,
    #[validate(required(message = "required"), custom(function = "valid_currency"))]
    currency: Option<String>,
    /// `"decline"` makes the confirmation fail, to test that path.
    #[validate(custom(function = "valid_simulation"))]
    simulate: Option<String>,
}

#[derive(Debug, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmRequest {
    #[validate(
        required(message = "required"),
        length(min = 1, max = 100, message = "invalid")
    )]
    payment_intent_id: Option<String>,
    #[validate(
        required(message = "required"),
        length(min = 1, max = 200, message = "invalid")
    )]
    client_secret: Option<String>,
}

/// `POST /payments/intent`
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
        Json(json!({
            "paymentIntentId": intent.id,
            "clientSecret": intent.client_secret,
            "status": "requires_confirmation",
        })),
    )
        .into_response())
}

/// `POST /payments/confirm`
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
        IntentStatus::Consumed => {
            return Err(OrdersError::PaymentMismatch(
                "this payment already paid for an order".into(),
            ));
        }
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
    Ok(Json(json!({"paymentIntentId": intent.id, "status": "succeeded"})).into_response())
}
