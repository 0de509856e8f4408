//! The organizer's sales view of an event: seats sold, held and available, the waitlist,
//! revenue and refunds by currency, cancellations, and sales per hour.
//!
//! It is tallied from the order store and the seat board, and kept per event for the
//! availability version it was tallied at (every sale, cancellation and hold bumps it), so that
//! refreshing the view during an on-sale reads the order store only after something changed.
//! Waitlist changes alone do not bump the version: the waitlist figures may be as old as the
//! last seat change.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use holdfast_common::money;
use holdfast_common::sync::lock;
use holdfast_common::venue::VenueSeat;
use holdfast_common::when::format_millis;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ids::{EventId, SeatId};
use crate::domain::order::{Order, OrderStatus, Refund, is_block};
use crate::domain::seat::Layout;
use crate::domain::waitlist::WaitlistSummary;
use crate::error::OrdersError;
use crate::store::board::Snapshot;
use crate::store::holds::Holds;
use crate::store::{OrderStore, WaitlistStore};

const HOUR_MS: i64 = 3_600_000;

/// What the sales view uses.
#[derive(Clone)]
pub struct Ports {
    pub holds: Holds,
    pub orders: Arc<dyn OrderStore>,
    pub waitlist: Arc<dyn WaitlistStore>,
    /// Reports by event, for the availability version they were tallied at.
    pub cache: Arc<SalesCache>,
}

/// An event's sales at one availability version.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalesReport {
    event_id: String,
    /// The availability version (the seat map's ETag) these figures are for.
    version: u64,
    seats: SeatCounts,
    waitlist: WaitlistCounts,
    /// One entry per currency orders were paid in.
    revenue: Vec<Revenue>,
    cancellations: Cancellations,
    /// Hours (UTC) with at least one order, oldest first.
    sales_per_hour: Vec<HourSales>,
    /// On a venue: the seats and revenue of each price category, in the venue's order (absent
    /// on a grid).
    #[serde(skip_serializing_if = "Option::is_none")]
    categories: Option<Vec<AreaSales>>,
    /// On a venue: the same per section (absent on a grid).
    #[serde(skip_serializing_if = "Option::is_none")]
    sections: Option<Vec<AreaSales>>,
}

/// The seats of one price category or section, and what its standing sold seats brought in.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct AreaSales {
    key: String,
    name: String,
    capacity: usize,
    sold: usize,
    held: usize,
    /// Kept back by the organizer.
    blocked: usize,
    available: usize,
    /// The category prices of its seats sold and not cancelled, in the event's currency.
    #[schema(value_type = f64)]
    revenue: serde_json::Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SeatCounts {
    capacity: usize,
    /// Bought and not cancelled.
    sold: usize,
    held: usize,
    /// Kept back by the organizer (neither sold nor available).
    blocked: usize,
    available: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct WaitlistCounts {
    /// People waiting (with or without an offer).
    entries: usize,
    /// Seats they wait for in all.
    seats: usize,
    /// Entries with seats offered right now.
    offers: usize,
}

/// Amounts in major units.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Revenue {
    currency: String,
    /// What every order paid.
    #[schema(value_type = f64)]
    gross: serde_json::Number,
    /// What cancellations refunded.
    #[schema(value_type = f64)]
    refunded: serde_json::Number,
    /// `gross - refunded`.
    #[schema(value_type = f64)]
    net: serde_json::Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Cancellations {
    /// Orders with every seat cancelled.
    orders_cancelled: usize,
    /// Orders with some seats cancelled.
    orders_partially_cancelled: usize,
    seats_cancelled: usize,
    refunds: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct HourSales {
    /// The hour's start, RFC 3339 UTC.
    #[schema(format = DateTime)]
    hour: String,
    currency: String,
    orders: usize,
    seats: usize,
    #[schema(value_type = f64)]
    amount: serde_json::Number,
}

/// Sales reports by event, each for the version it was tallied at.
#[derive(Default)]
pub struct SalesCache {
    reports: Mutex<HashMap<EventId, Arc<SalesReport>>>,
}

/// How many events' reports are kept at most; past it the cache starts again.
const CACHED_EVENTS: usize = 1_000;

/// The event's sales now: the cached report if nothing changed since it was tallied.
pub async fn report(ports: &Ports, layout: &Layout) -> Result<Arc<SalesReport>, OrdersError> {
    let event_id = &layout.event_id;
    let version = ports.holds.board().version(event_id).await?;
    if let Some(report) = ports.cache.cached(event_id, version) {
        return Ok(report);
    }
    let snapshot = ports.holds.snapshot(event_id).await?;
    let (orders, refunds, waitlist, sold) = tokio::try_join!(
        ports.orders.orders_of_event(event_id),
        ports.orders.refunds_of_event(event_id),
        ports.waitlist.waitlist_summary(event_id),
        ports.orders.sold_seats(event_id),
    )?;
    let blocked: HashSet<SeatId> = sold
        .into_iter()
        .filter(|(_, order)| is_block(order))
        .map(|(seat, _)| seat)
        .collect();
    let report = Arc::new(tally(
        layout, &snapshot, &orders, &refunds, &waitlist, &blocked,
    ));
    ports.cache.keep(event_id, report.clone());
    Ok(report)
}

impl SalesCache {
    fn cached(&self, event_id: &EventId, version: u64) -> Option<Arc<SalesReport>> {
        let reports = lock(&self.reports);
        reports
            .get(event_id)
            .filter(|report| report.version == version)
            .cloned()
    }

    fn keep(&self, event_id: &EventId, report: Arc<SalesReport>) {
        let mut reports = lock(&self.reports);
        if reports.len() >= CACHED_EVENTS {
            reports.clear();
        }
        reports.insert(event_id.clone(), report);
    }
}

/// The figures of one event at `snapshot`, `blocked` being the seats kept back.
pub fn tally(
    layout: &Layout,
    snapshot: &Snapshot,
    orders: &[Order],
    refunds: &[Refund],
    waitlist: &WaitlistSummary,
    blocked: &HashSet<SeatId>,
) -> SalesReport {
    let sold: usize = orders.iter().map(|o| o.standing_seats().count()).sum();
    let held = snapshot.held.len();
    let capacity = layout.capacity();
    // Minor units by currency: (gross, refunded).
    let mut money_by_currency: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    // (hour, currency) → (orders, seats, amount).
    let mut hours: BTreeMap<(i64, &str), (usize, usize, i64)> = BTreeMap::new();
    for order in orders {
        money_by_currency.entry(&order.currency).or_default().0 += order.amount_minor;
        let hour = order.created_at_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let slot = hours.entry((hour, &order.currency)).or_default();
        slot.0 += 1;
        slot.1 += order.seat_ids.len();
        slot.2 += order.amount_minor;
    }
    for refund in refunds {
        money_by_currency.entry(&refund.currency).or_default().1 += refund.amount_minor;
    }
    let count = |status| orders.iter().filter(|o| o.status == status).count();
    SalesReport {
        event_id: layout.event_id.to_string(),
        version: snapshot.version,
        seats: SeatCounts {
            capacity,
            sold,
            held,
            blocked: blocked.len(),
            available: capacity.saturating_sub(sold + held + blocked.len()),
        },
        waitlist: WaitlistCounts {
            entries: waitlist.entries,
            seats: waitlist.seats,
            offers: waitlist.offers,
        },
        revenue: money_by_currency
            .into_iter()
            .map(|(currency, (gross, refunded))| Revenue {
                currency: currency.to_string(),
                gross: money::to_json(gross),
                refunded: money::to_json(refunded),
                net: money::to_json(gross - refunded),
            })
            .collect(),
        cancellations: Cancellations {
            orders_cancelled: count(OrderStatus::Cancelled),
            orders_partially_cancelled: count(OrderStatus::PartlyCancelled),
            seats_cancelled: orders.iter().map(|o| o.cancelled_seat_ids.len()).sum(),
            refunds: refunds.len(),
        },
        sales_per_hour: hours
            .into_iter()
            .map(|((hour, currency), (orders, seats, amount))| HourSales {
                hour: format_millis(hour),
                currency: currency.to_string(),
                orders,
                seats,
                amount: money::to_json(amount),
            })
            .collect(),
        categories: layout.venue.as_ref().map(|plan| {
            let names = plan.venue.categories.iter().map(|c| (&c.key, &c.name));
            by_area(layout, snapshot, orders, blocked, names, |seat| {
                seat.category
            })
        }),
        sections: layout.venue.as_ref().map(|plan| {
            let names = plan.venue.sections.iter().map(|s| (&s.key, &s.name));
            by_area(layout, snapshot, orders, blocked, names, |seat| {
                seat.section
            })
        }),
    }
}

/// Seats and revenue per area of a venue (category or section), `area` giving a seat's.
fn by_area<'a>(
    layout: &Layout,
    snapshot: &Snapshot,
    orders: &[Order],
    blocked: &HashSet<SeatId>,
    names: impl Iterator<Item = (&'a String, &'a String)>,
    area: impl Fn(&VenueSeat) -> usize,
) -> Vec<AreaSales> {
    let Some(plan) = &layout.venue else {
        return Vec::new();
    };
    let mut areas: Vec<AreaSales> = names
        .map(|(key, name)| AreaSales {
            key: key.clone(),
            name: name.clone(),
            capacity: 0,
            sold: 0,
            held: 0,
            blocked: 0,
            available: 0,
            revenue: money::to_json(0),
        })
        .collect();
    let mut revenue = vec![0i64; areas.len()];
    let mut sold: HashSet<&str> = HashSet::new();
    for order in orders {
        for seat_id in order.standing_seats() {
            if let Some(seat) = plan.seat(seat_id) {
                sold.insert(seat_id.as_str());
                let at = area(seat);
                areas[at].sold += 1;
                revenue[at] += layout.price_of(seat_id);
            }
        }
    }
    for seat_id in &snapshot.held {
        if let Some(seat) = plan
            .seat(seat_id)
            .filter(|_| !sold.contains(seat_id.as_str()))
        {
            areas[area(seat)].held += 1;
        }
    }
    for seat_id in blocked {
        if let Some(seat) = plan.seat(seat_id) {
            areas[area(seat)].blocked += 1;
        }
    }
    for seat in &plan.venue.seats {
        areas[area(seat)].capacity += 1;
    }
    for (sales, revenue) in areas.iter_mut().zip(revenue) {
        sales.available = sales
            .capacity
            .saturating_sub(sales.sold + sales.held + sales.blocked);
        sales.revenue = money::to_json(revenue);
    }
    areas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(seats: &[&str], cancelled: &[&str], amount: i64, at: i64) -> Order {
        Order {
            order_id: format!("o{at}").as_str().into(),
            user_id: "u".into(),
            event_id: "e".into(),
            seat_ids: seats.iter().map(|s| (*s).into()).collect(),
            amount_minor: amount,
            currency: "INR".into(),
            payment_intent_id: format!("pi{at}"),
            status: match cancelled.len() {
                0 => OrderStatus::Bought,
                n if n == seats.len() => OrderStatus::Cancelled,
                _ => OrderStatus::PartlyCancelled,
            },
            created_at_ms: at,
            cancelled_seat_ids: cancelled.iter().map(|s| (*s).into()).collect(),
            cancelled_at_ms: vec![at; cancelled.len()],
            refunded_minor: 0,
            revision: 0,
            email: None,
        }
    }

    fn refund(amount: i64) -> Refund {
        Refund {
            refund_id: format!("r{amount}"),
            order_id: "o".into(),
            event_id: "e".into(),
            user_id: "u".into(),
            payment_intent_id: None,
            seat_ids: vec![],
            amount_minor: amount,
            currency: "INR".into(),
            cancelled_by: "u".into(),
            created_at_ms: 0,
        }
    }

    #[test]
    fn the_tally_counts_seats_money_and_hours() {
        let layout = Layout {
            event_id: "e".into(),
            rows: 2,
            seats_per_row: 5,
            price_minor: 1_050,
            currency: "INR".into(),
            version: 0,
            organizer_id: None,
            starts_at_ms: None,
            venue: None,
            about: crate::domain::seat::EventFacts::default(),
        };
        let snapshot = Snapshot {
            version: 7,
            held: vec!["R2-S1".into()],
            sold: vec![],
        };
        let orders = [
            order(&["R1-S1", "R1-S2"], &[], 2_100, 10),
            order(&["R1-S3", "R1-S4"], &["R1-S4"], 2_100, HOUR_MS + 5),
            order(&["R1-S5"], &["R1-S5"], 1_050, HOUR_MS + 9),
        ];
        let refunds = [refund(1_050), refund(1_050)];
        let waitlist = WaitlistSummary {
            entries: 1,
            seats: 3,
            offers: 0,
        };
        let report = tally(
            &layout,
            &snapshot,
            &orders,
            &refunds,
            &waitlist,
            &HashSet::from([SeatId::from("R2-S5")]),
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["seats"],
            serde_json::json!({"capacity": 10, "sold": 3, "held": 1, "blocked": 1, "available": 5})
        );
        assert_eq!(
            json["revenue"],
            serde_json::json!([{"currency": "INR", "gross": 52.5, "refunded": 21, "net": 31.5}])
        );
        assert_eq!(json["cancellations"]["ordersCancelled"], 1);
        assert_eq!(json["cancellations"]["ordersPartiallyCancelled"], 1);
        assert_eq!(json["cancellations"]["seatsCancelled"], 2);
        assert_eq!(json["waitlist"]["seats"], 3);
        assert_eq!(json["version"], 7);
        let hours = json["salesPerHour"].as_array().unwrap();
        assert_eq!(hours.len(), 2);
        assert_eq!(hours[0]["hour"], "1970-01-01T00:00:00Z");
        assert_eq!(hours[1]["orders"], 2);
        assert_eq!(hours[1]["amount"], 31.5);
    }
}
