//! A holder's tickets: as JSON (with the signed pass), as a QR image (SVG or PNG), as a
//! printable page of an order's tickets, and given to someone else. Only the holder (or an
//! admin) sees a ticket; to anyone else it does not exist (404). A cancelled ticket, or one
//! its buyer gave away, shows its status but no pass.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use holdfast_common::auth::AuthUser;
use holdfast_common::error::ErrorBody;
use holdfast_common::html::escape;
use holdfast_common::when::{format_local, format_millis};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ids::OrderId;
use crate::domain::order::Order;
use crate::domain::ticket::{Ticket, TicketStatus};
use crate::error::OrdersError;
use crate::state::AppState;

/// A ticket as its holder sees it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketView {
    /// A UUID.
    ticket_id: String,
    order_id: String,
    event_id: String,
    seat_id: String,
    /// `valid` (it enters), `used` (it has entered), `cancelled` (its seat was cancelled),
    /// `transferred` (given to someone else: seen by its buyer).
    #[schema(example = "valid")]
    status: &'static str,
    /// Bumped when the ticket is reissued; only the current version's pass enters.
    version: u32,
    /// The signed QR payload; `null` once the ticket is cancelled.
    pass: Option<String>,
    /// Where its QR code is, as SVG and as PNG; `null` once the ticket is cancelled.
    qr: Option<QrLinks>,
    /// When it first entered, and at which gate.
    #[schema(format = DateTime)]
    entered_at: Option<String>,
    entry_gate: Option<String>,
    /// How often it was transferred.
    transfers: u32,
}

/// The QR images of a ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct QrLinks {
    #[schema(example = "/api/orders/tickets/0b6c1a52-8a0e-4c55-9d1f-1f1b2c3d4e5f/qr?format=svg")]
    svg: String,
    #[schema(example = "/api/orders/tickets/0b6c1a52-8a0e-4c55-9d1f-1f1b2c3d4e5f/qr?format=png")]
    png: String,
}

impl TicketView {
    /// The ticket as `viewer` sees it: its pass only if they hold it (an admin sees it too).
    fn of(state: &AppState, ticket: &Ticket, viewer: &AuthUser) -> Self {
        let holds = ticket.holder_id.as_deref() == Some(viewer.id()) || viewer.is_admin();
        let live = ticket.status == TicketStatus::Valid && holds;
        let status = ticket.shown_status(holds);
        let qr = |format| {
            format!(
                "/api/orders/tickets/{}/qr?format={format}",
                ticket.ticket_id
            )
        };
        Self {
            ticket_id: ticket.ticket_id.clone(),
            order_id: ticket.order_id.to_string(),
            event_id: ticket.event_id.to_string(),
            seat_id: ticket.seat_id.to_string(),
            status,
            version: ticket.version,
            pass: live.then(|| state.ticket_keys.pass_of(ticket)).flatten(),
            qr: live.then(|| QrLinks {
                svg: qr("svg"),
                png: qr("png"),
            }),
            entered_at: ticket.entered_at_ms.map(format_millis),
            entry_gate: ticket.entry_gate.clone(),
            transfers: ticket.transfers,
        }
    }
}

/// An order's tickets.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderTickets {
    order_id: String,
    event_id: String,
    /// In the order's seat order; cancelled seats' tickets too.
    tickets: Vec<TicketView>,
}

/// The order, if the caller may see its tickets (its buyer or an admin).
async fn own_order(
    state: &AppState,
    caller: &AuthUser,
    order_id: &str,
) -> Result<Order, OrdersError> {
    if uuid::Uuid::parse_str(order_id).is_err() {
        return Err(OrdersError::NoSuchOrder);
    }
    let order = state
        .stores
        .orders
        .order(&OrderId::named(order_id))
        .await?
        .filter(|order| order.user_id == caller.id() || caller.is_admin())
        .ok_or(OrdersError::NoSuchOrder)?;
    Ok(order)
}

/// The order's tickets, in its seat order.
async fn tickets_in_seat_order(
    state: &AppState,
    order: &Order,
) -> Result<Vec<Ticket>, OrdersError> {
    let mut tickets = state
        .stores
        .tickets
        .tickets_of_order(&order.order_id)
        .await?;
    let position = |ticket: &Ticket| {
        order
            .seat_ids
            .iter()
            .position(|seat| *seat == ticket.seat_id)
    };
    tickets.sort_by_key(|t| (position(t), t.status != TicketStatus::Valid));
    Ok(tickets)
}

/// The tickets of one of the caller's orders.
#[utoipa::path(get, path = "/orders/{order_id}/tickets", tag = "tickets",
    params(("order_id" = String, Path, description = "The order's id (a UUID)")),
    responses(
        (status = 200, description = "The order's tickets", body = OrderTickets),
        (status = 404, description = "`NOT_FOUND`: no such order of yours", body = ErrorBody),
    ))]
pub async fn of_order(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(order_id): Path<String>,
) -> Result<Response, OrdersError> {
    let order = own_order(&state, &caller, &order_id).await?;
    let tickets = tickets_in_seat_order(&state, &order).await?;
    Ok(Json(OrderTickets {
        order_id: order.order_id.to_string(),
        event_id: order.event_id.to_string(),
        tickets: tickets
            .iter()
            .map(|t| TicketView::of(&state, t, &caller))
            .collect(),
    })
    .into_response())
}

/// One of the caller's tickets.
#[utoipa::path(get, path = "/tickets/{ticket_id}", tag = "tickets",
    params(("ticket_id" = String, Path, description = "The ticket's id (a UUID)")),
    responses(
        (status = 200, description = "The ticket", body = TicketView),
        (status = 404, description = "`NOT_FOUND`: no such ticket of yours", body = ErrorBody),
    ))]
pub async fn one(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(ticket_id): Path<String>,
) -> Result<Response, OrdersError> {
    let ticket = crate::transfers::held_by(&state.transfers, &caller, &ticket_id, true).await?;
    Ok(Json(TicketView::of(&state, &ticket, &caller)).into_response())
}

/// The caller's tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldTickets {
    /// Bought or received, oldest first; cancelled ones too.
    tickets: Vec<TicketView>,
}

/// Every ticket the caller holds, bought or received (and claimed).
#[utoipa::path(get, path = "/tickets", tag = "tickets",
    responses((status = 200, description = "The caller's tickets", body = HeldTickets)))]
pub async fn mine(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Response, OrdersError> {
    let tickets = state.stores.tickets.tickets_of_holder(caller.id()).await?;
    Ok(Json(HeldTickets {
        tickets: tickets
            .iter()
            .map(|t| TicketView::of(&state, t, &caller))
            .collect(),
    })
    .into_response())
}

/// To whom.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The receiver's e-mail address.
    #[schema(example = "friend@example.com")]
    email: String,
}

/// A ticket given away.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    /// The ticket as the giver now sees it (`transferred`).
    ticket: TicketView,
    /// The code the receiver claims it with (mailed to them too): 32 hexadecimal digits.
    claim_code: String,
}

/// Gives one of the caller's tickets to someone else. The ticket is reissued (the old pass is
/// refused at the door) to the receiver's address; both are mailed; the receiver claims it
/// with the code in their mail (`POST /api/orders/tickets/claim`), signed in with that address.
#[utoipa::path(post, path = "/tickets/{ticket_id}/transfer", tag = "tickets",
    params(("ticket_id" = String, Path, description = "The ticket's id (a UUID)")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "The ticket as the giver now sees it, and the claim code", body = TransferView),
        (status = 400, description = "`VALIDATION_FAILED` (`email`), `INVALID_JSON`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such ticket of yours", body = ErrorBody),
        (status = 409, description = "`TICKET_REVOKED`, `TICKET_USED`, `TRANSFERS_DISABLED`, `TRANSFER_CLOSED`, `TRANSFER_LIMIT`, `TICKET_CHANGED`", body = ErrorBody),
    ))]
pub async fn transfer(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(ticket_id): Path<String>,
    holdfast_common::extract::JsonBody(request): holdfast_common::extract::JsonBody<
        TransferRequest,
    >,
) -> Result<Response, OrdersError> {
    let given =
        crate::transfers::transfer(&state.transfers, &caller, &ticket_id, &request.email).await?;
    Ok(Json(TransferView {
        ticket: TicketView::of(&state, &given.ticket, &caller),
        claim_code: given.claim_code,
    })
    .into_response())
}

/// The claim code of a ticket given to the caller.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// From the mail sent to the caller's address.
    code: String,
}

/// Takes a ticket given to the caller's address: the code from the mail sent there proves it is
/// theirs. It is theirs from now on, with its pass.
#[utoipa::path(post, path = "/tickets/claim", tag = "tickets",
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "The ticket, now the caller's", body = TicketView),
        (status = 400, description = "`INVALID_JSON`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no ticket waits for this address with this code", body = ErrorBody),
    ))]
pub async fn claim(
    State(state): State<AppState>,
    caller: AuthUser,
    holdfast_common::extract::JsonBody(request): holdfast_common::extract::JsonBody<ClaimRequest>,
) -> Result<Response, OrdersError> {
    let ticket = crate::transfers::claim(&state.transfers, &caller, &request.code).await?;
    Ok(Json(TicketView::of(&state, &ticket, &caller)).into_response())
}

/// `?format=`
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QrQuery {
    /// `svg` (the default) or `png`.
    format: Option<String>,
}

/// The QR code of one of the caller's tickets.
#[utoipa::path(get, path = "/tickets/{ticket_id}/qr", tag = "tickets",
    params(("ticket_id" = String, Path, description = "The ticket's id (a UUID)"), QrQuery),
    responses(
        (status = 200, description = "The QR code of the ticket's pass",
            content((String = "image/svg+xml"), (Vec<u8> = "image/png"))),
        (status = 400, description = "`INVALID_QUERY`: an unknown format", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such ticket of yours", body = ErrorBody),
        (status = 409, description = "`TICKET_REVOKED`: the ticket no longer admits anyone", body = ErrorBody),
    ))]
pub async fn qr(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(ticket_id): Path<String>,
    query: Result<Query<QrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, OrdersError> {
    let Query(query) = query.map_err(|e| OrdersError::InvalidQuery(e.body_text()))?;
    let format = query.format.unwrap_or_else(|| "svg".into());
    if format != "svg" && format != "png" {
        return Err(OrdersError::InvalidQuery(
            "format must be svg or png".into(),
        ));
    }
    let ticket = crate::transfers::held_by(&state.transfers, &caller, &ticket_id, true).await?;
    if ticket.status != TicketStatus::Valid {
        return Err(OrdersError::TicketRevoked);
    }
    let pass = state
        .ticket_keys
        .pass_of(&ticket)
        .ok_or(OrdersError::TicketRevoked)?;
    let private = (header::CACHE_CONTROL, "private, no-store");
    let answer = if format == "png" {
        holdfast_common::qr::png(&pass)
            .map(|png| ([(header::CONTENT_TYPE, "image/png"), private], png).into_response())
    } else {
        holdfast_common::qr::svg(&pass)
            .map(|svg| ([(header::CONTENT_TYPE, "image/svg+xml"), private], svg).into_response())
    };
    answer.ok_or(OrdersError::TicketRevoked)
}

/// A page with every valid ticket of one of the caller's orders, to print or save as PDF.
#[utoipa::path(get, path = "/orders/{order_id}/tickets/print", tag = "tickets",
    params(("order_id" = String, Path, description = "The order's id (a UUID)")),
    responses(
        (status = 200, description = "An HTML page, one ticket per printed page", content_type = "text/html"),
        (status = 404, description = "`NOT_FOUND`: no such order of yours", body = ErrorBody),
    ))]
pub async fn print(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(order_id): Path<String>,
) -> Result<Response, OrdersError> {
    let order = own_order(&state, &caller, &order_id).await?;
    let tickets = tickets_in_seat_order(&state, &order).await?;
    let layout = state.layouts.get(&order.event_id).await?;
    let title = layout
        .as_ref()
        .map(|l| l.about.title.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("Event {}", order.event_id));
    let mut page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tickets: {title}</title>\
         <style>body{{font-family:sans-serif;margin:0}}section{{page-break-after:always;padding:2em;text-align:center}}\
         svg{{width:60mm;height:60mm}}h1{{font-size:1.4em}}p{{margin:.3em}}</style></head><body>",
        title = escape(&title)
    );
    let when = layout
        .as_ref()
        .and_then(|l| {
            let date = l.about.date.as_deref()?;
            format_local(date, l.about.timezone.as_deref())
        })
        .into_iter()
        .chain(layout.as_ref().and_then(|l| l.about.location.clone()))
        .map(|line| format!("<p>{}</p>", escape(&line)))
        .collect::<String>();
    let mut shown = 0;
    // Only the tickets the caller holds: one given away is printed by its new holder.
    let printable = tickets.iter().filter(|t| {
        t.status == TicketStatus::Valid
            && (t.holder_id.as_deref() == Some(caller.id()) || caller.is_admin())
    });
    for ticket in printable {
        let Some(svg) = state
            .ticket_keys
            .pass_of(ticket)
            .and_then(|p| holdfast_common::qr::svg(&p))
        else {
            continue;
        };
        // The SVG document's XML declaration has no place inside HTML.
        let svg = svg.split_once("?>").map_or(svg.as_str(), |(_, rest)| rest);
        page.push_str(&format!(
            "<section><h1>{title}</h1>{when}<p>Seat <strong>{seat}</strong></p>{svg}\
             <p><small>Ticket {id} · order {order}</small></p></section>",
            title = escape(&title),
            seat = escape(&layout.as_ref().map_or_else(
                || ticket.seat_id.to_string(),
                |l| l.seat_label(&ticket.seat_id)
            )),
            id = escape(&ticket.ticket_id),
            order = escape(&order.order_id),
        ));
        shown += 1;
    }
    if shown == 0 {
        page.push_str("<section><p>This order has no valid tickets.</p></section>");
    }
    page.push_str("</body></html>");
    Ok(([(header::CACHE_CONTROL, "private, no-store")], Html(page)).into_response())
}

/// A scanner's keys: `{eventId, algorithm, keys: [{keyId, publicKey}]}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScannerKeys {
    event_id: String,
    #[schema(example = "Ed25519")]
    algorithm: &'static str,
    /// The signing key first; a pass names its key by `keyId`.
    keys: Vec<ScannerKey>,
    /// How a pass is laid out, for scanner developers.
    format: &'static str,
}

/// One public key.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScannerKey {
    key_id: String,
    /// The 32-byte Ed25519 public key, base64url without padding.
    public_key: String,
}

/// The keys that verify this event's ticket passes (anyone may read them: they only verify).
#[utoipa::path(get, path = "/checkin/events/{event_id}/keys", tag = "check-in",
    params(("event_id" = String, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The public keys", body = ScannerKeys),
        (status = 400, description = "`INVALID_ID`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such event", body = ErrorBody),
    ))]
pub async fn keys(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Response, OrdersError> {
    let event_id = super::event_id(&event_id)?;
    state.layouts.existing(&event_id).await?;
    Ok(Json(ScannerKeys {
        event_id: event_id.to_string(),
        algorithm: "Ed25519",
        keys: state
            .ticket_keys
            .public_keys()
            .iter()
            .map(|k| ScannerKey {
                key_id: k.key_id.clone(),
                public_key: k.encoded(),
            })
            .collect(),
        format: PASS_FORMAT,
    })
    .into_response())
}

const PASS_FORMAT: &str = "<keyId>.<body>.<signature>; base64url without padding; the Ed25519 signature covers the ASCII text <keyId>.<body>; body: 0x01, ticket id (16 bytes), version (u32 big-endian), secret (6 bytes), event id (12 bytes), seat id (UTF-8, the rest)";
