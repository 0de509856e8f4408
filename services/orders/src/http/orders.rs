//! Reading orders: the caller's list and a public ticket. Every view of an order lists the
//! seats it still holds in `seatIds` and, apart, the cancelled ones with when each was given
//! back ([`OrderSeats`]), so that no two valid-looking tickets ever name one seat.
//!
//! The caller's list also carries what a "My orders" page shows: the event (title, date, time
//! zone, place), the amount paid and refunded, whether it was paid (`paymentStatus`: `status`
//! stays `reserved` for the clients that read it), and each seat's label and ticket; and the
//! tickets others gave the caller.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;

use std::collections::HashMap;

use holdfast_common::messages::EventSummary;
use holdfast_common::money;

use crate::domain::ids::{EventId, OrderId, SeatId};
use crate::domain::order::{Order, OrderStatus};
use crate::domain::seat::Layout;
// `Ticket` here is the public view of an order (its OpenAPI name since before tickets).
use crate::domain::ticket::{Ticket as IssuedTicket, TicketStatus};
use crate::error::OrdersError;
use crate::state::AppState;
use holdfast_common::when::format_millis;

/// An order's seats, as every view of it shows them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSeats<'a> {
    /// The seats the order still holds; cancelled seats are not among them.
    #[schema(example = json!(["R1-S1", "R1-S3"]))]
    seat_ids: Vec<&'a str>,
    /// The seats given back by cancellations (no longer the order's).
    #[schema(example = json!(["R1-S2"]))]
    cancelled_seat_ids: Vec<&'a str>,
    /// Each cancelled seat with when it was given back.
    cancellations: Vec<SeatCancellation<'a>>,
}

/// A seat given back by a cancellation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatCancellation<'a> {
    seat_id: &'a str,
    /// `null` for cancellations recorded before the time was kept.
    #[schema(format = DateTime)]
    cancelled_at: Option<String>,
}

impl<'a> From<&'a Order> for OrderSeats<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            seat_ids: order.standing_seats().map(SeatId::as_str).collect(),
            cancelled_seat_ids: SeatId::strs(&order.cancelled_seat_ids),
            cancellations: order
                .cancelled_seats()
                .map(|(seat, at_ms)| SeatCancellation {
                    seat_id: seat,
                    cancelled_at: at_ms.map(format_millis),
                })
                .collect(),
        }
    }
}

/// One of the caller's orders.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView<'a> {
    /// The same as `orderId`, for clients that read `_id`.
    #[serde(rename = "_id")]
    id: &'a str,
    /// A UUID.
    #[schema(example = "0b6c1a52-8a0e-4c55-9d1f-1f1b2c3d4e5f")]
    order_id: &'a str,
    event_id: &'a str,
    #[serde(flatten)]
    seats: OrderSeats<'a>,
    /// The paying intent; `null` for free seats.
    payment_intent_id: Option<&'a str>,
    /// `reserved` (bought: existing clients read it so), `partially_cancelled` or
    /// `cancelled`; whether it was paid is `paymentStatus`.
    status: OrderStatus,
    /// `paid`, `free` (nothing to pay), `partially_refunded` or `refunded`.
    #[schema(example = "paid")]
    payment_status: &'static str,
    /// What was paid, in major units, and in which currency.
    #[schema(value_type = f64, example = 20.0)]
    amount: serde_json::Number,
    currency: &'a str,
    /// What cancellations refunded so far.
    #[schema(value_type = f64, example = 0.0)]
    refunded: serde_json::Number,
    /// The event, as a "My orders" page shows it; `null` when it no longer exists.
    event: Option<EventSummary>,
    /// Every seat bought, with its label and its ticket.
    tickets: Vec<SeatTicket>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// A seat of an order and its ticket.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatTicket {
    seat_id: String,
    /// `Stalls, row A, seat 12`, or `Row 1, seat 3` on a grid.
    label: String,
    ticket_id: Option<String>,
    /// `valid`, `used`, `cancelled`, `transferred` (given to someone else); `null` for a seat
    /// without a ticket.
    ticket_status: Option<&'static str>,
}

impl<'a> OrderView<'a> {
    fn of(order: &'a Order, layout: Option<&Layout>, tickets: &[IssuedTicket]) -> Self {
        let payment_status = match order.refunded_minor {
            _ if order.paid_with().is_none() => "free",
            0 => "paid",
            refunded if refunded >= order.amount_minor => "refunded",
            _ => "partially_refunded",
        };
        let seat_ticket = |seat: &SeatId| {
            let ticket = tickets
                .iter()
                .filter(|t| t.seat_id == *seat)
                .min_by_key(|t| t.status != TicketStatus::Valid);
            SeatTicket {
                seat_id: seat.to_string(),
                label: layout.map_or_else(|| seat.to_string(), |l| l.seat_label(seat)),
                ticket_id: ticket.map(|t| t.ticket_id.clone()),
                ticket_status: ticket
                    .map(|t| t.shown_status(t.holder_id.as_deref() == Some(&order.user_id))),
            }
        };
        Self {
            id: &order.order_id,
            order_id: &order.order_id,
            event_id: &order.event_id,
            seats: OrderSeats::from(order),
            payment_intent_id: order.paid_with(),
            status: order.status,
            payment_status,
            amount: money::to_json(order.amount_minor),
            currency: &order.currency,
            refunded: money::to_json(order.refunded_minor),
            event: layout.map(Layout::summary),
            tickets: order.seat_ids.iter().map(seat_ticket).collect(),
            created_at: format_millis(order.created_at_ms),
        }
    }
}

/// The caller's orders.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderList<'a> {
    orders: Vec<OrderView<'a>>,
    /// Tickets others gave the caller and the caller claimed (their orders are not the
    /// caller's): see `GET /api/orders/tickets` for their passes.
    received_tickets: Vec<ReceivedTicket>,
}

/// A ticket someone gave the caller.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedTicket {
    ticket_id: String,
    event_id: String,
    seat_id: String,
    label: String,
    event: Option<EventSummary>,
}

/// An order as anyone with its id may see it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView<'a> {
    order_id: &'a str,
    event_id: &'a str,
    #[serde(flatten)]
    seats: OrderSeats<'a>,
    status: OrderStatus,
    /// Whether the ticket admits anyone: `false` once every seat is cancelled.
    valid_for_entry: bool,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `{order: …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ticket<'a> {
    order: TicketView<'a>,
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders",
    responses((status = 200, description = "Newest first", body = OrderList)))]
pub async fn mine(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Response, OrdersError> {
    let orders = state.stores.orders.orders_of(caller.id()).await?;
    let tickets = futures_util::future::try_join_all(
        orders
            .iter()
            .map(|o| state.stores.tickets.tickets_of_order(&o.order_id)),
    )
    .await?;
    let held = state.stores.tickets.tickets_of_holder(caller.id()).await?;
    let received: Vec<&IssuedTicket> = held
        .iter()
        .filter(|t| !orders.iter().any(|o| o.order_id == t.order_id))
        .collect();
    // One layout per event (cached by the layout source).
    let mut layouts: HashMap<EventId, Option<Layout>> = HashMap::new();
    let events = orders
        .iter()
        .map(|o| &o.event_id)
        .chain(received.iter().map(|t| &t.event_id));
    for event_id in events {
        if !layouts.contains_key(event_id) {
            let layout = state.layouts.get(event_id).await?;
            layouts.insert(event_id.clone(), layout);
        }
    }
    let layout_of = |event_id: &EventId| layouts.get(event_id).and_then(Option::as_ref);
    let views = orders
        .iter()
        .zip(&tickets)
        .map(|(order, tickets)| OrderView::of(order, layout_of(&order.event_id), tickets))
        .collect();
    let received_tickets = received
        .iter()
        .map(|t| {
            let layout = layout_of(&t.event_id);
            ReceivedTicket {
                ticket_id: t.ticket_id.clone(),
                event_id: t.event_id.to_string(),
                seat_id: t.seat_id.to_string(),
                label: layout.map_or_else(|| t.seat_id.to_string(), |l| l.seat_label(&t.seat_id)),
                event: layout.map(Layout::summary),
            }
        })
        .collect();
    Ok(Json(OrderList {
        orders: views,
        received_tickets,
    })
    .into_response())
}

/// A ticket anyone with the order's id may show (no authentication).
#[utoipa::path(get, path = "/public/orders/{order_id}", tag = "orders",
    params(("order_id" = String, Path, description = "The order's id (a UUID)")),
    responses(
        (status = 200, description = "The order", body = Ticket),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
    ))]
pub async fn public_order(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Response, OrdersError> {
    let not_found = || holdfast_common::error::ApiError::not_found("no such order");
    if uuid::Uuid::parse_str(&order_id).is_err() {
        return Err(not_found().into());
    }
    let order = state
        .stores
        .orders
        .order(&OrderId::named(&order_id))
        .await?
        .ok_or_else(not_found)?;
    let order = TicketView {
        order_id: &order.order_id,
        event_id: &order.event_id,
        seats: OrderSeats::from(&order),
        status: order.status,
        valid_for_entry: order.standing_seats().next().is_some(),
        created_at: format_millis(order.created_at_ms),
    };
    Ok(Json(Ticket { order }).into_response())
}
