//! What each announcement says to its recipient: the mails, in plain text.
//!
//! Every message the orders service announces carries the address of the person it concerns
//! (`email`: the buyer's, or the waitlisted user's when they joined), so composing needs no
//! other service. A message without an address (an order stored before addresses were kept)
//! makes no mail.

use serde_json::Value;

/// The routing keys that make mail.
pub const ROUTING_KEYS: [&str; 5] = [
    "order.purchased",
    "order.cancelled",
    "waitlist.offered",
    "waitlist.expired",
    "waitlist.removed",
];

/// One mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The mail that a `routing_key` message with `payload` makes, if any.
pub fn compose(routing_key: &str, payload: &Value) -> Option<Mail> {
    let to = text(payload, "email").filter(|address| !address.is_empty())?;
    let event = text(payload, "eventId").unwrap_or("your event");
    let seats = seat_list(payload);
    let (subject, body) = match routing_key {
        "order.purchased" => {
            let order = text(payload, "orderId")?;
            (
                format!("Your tickets: order {order}"),
                format!(
                    "Thank you for your order.\n\n\
                     Order: {order}\n\
                     Event: {event}\n\
                     Seats: {seats}\n\
                     Paid: {}\n\n\
                     Your tickets are listed under your orders.\n",
                    price(payload.get("amount"), payload.get("currency")),
                ),
            )
        }
        "order.cancelled" => {
            let order = text(payload, "orderId")?;
            let refund = payload.get("refund")?;
            let whole = text(payload, "status") == Some("cancelled");
            (
                if whole {
                    format!("Order {order} is cancelled")
                } else {
                    format!("Seats of order {order} are cancelled")
                },
                format!(
                    "{}\n\n\
                     Order: {order}\n\
                     Event: {event}\n\
                     Seats cancelled: {seats}\n\
                     Refunded: {}\n\n\
                     The refund goes back to the payment you bought with.\n",
                    if whole {
                        "Your order is cancelled."
                    } else {
                        "Some seats of your order are cancelled; the others still stand."
                    },
                    price(refund.get("amount"), refund.get("currency")),
                ),
            )
        }
        "waitlist.offered" => {
            let hold = text(payload, "holdId")?;
            let until = text(payload, "expiresAt").unwrap_or("the offer ends");
            (
                "Seats are waiting for you".to_string(),
                format!(
                    "Seats came free and you are next on the waitlist.\n\n\
                     Event: {event}\n\
                     Seats held for you: {seats}\n\
                     Hold: {hold}\n\
                     Buy them before: {until}\n\n\
                     After that they pass to the next person in line.\n"
                ),
            )
        }
        "waitlist.expired" => (
            "Your waitlist offer has ended".to_string(),
            format!(
                "The seats held for you were not bought in time and passed to the next \
                 person in line.\n\n\
                 Event: {event}\n\n\
                 Join the waitlist again to be offered seats that come free.\n"
            ),
        ),
        "waitlist.removed" => {
            let wanted = payload.get("seats").and_then(Value::as_u64).unwrap_or(0);
            let most = payload.get("maxSeats").and_then(Value::as_u64).unwrap_or(0);
            (
                "You were taken off a waitlist".to_string(),
                format!(
                    "You asked for {wanted} seats, but no one may now hold more than {most} \
                     seats at once, so no offer could ever be made to you. You were taken off \
                     the waitlist so that it does not hold up the people behind you.\n\n\
                     Event: {event}\n\n\
                     Join the waitlist again for at most {most} seats to be offered seats that \
                     come free.\n"
                ),
            )
        }
        _ => return None,
    };
    Some(Mail {
        to: to.to_string(),
        subject,
        body,
    })
}

fn text<'a>(payload: &'a Value, field: &str) -> Option<&'a str> {
    payload.get(field)?.as_str()
}

fn seat_list(payload: &Value) -> String {
    let seats: Vec<&str> = payload
        .get("seatIds")
        .and_then(Value::as_array)
        .map(|seats| seats.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if seats.is_empty() {
        "-".into()
    } else {
        seats.join(", ")
    }
}

/// `499.99 INR`, as the amounts travel (major units, exact decimals).
fn price(amount: Option<&Value>, currency: Option<&Value>) -> String {
    let amount = amount.map_or_else(|| "0".into(), Value::to_string);
    match currency.and_then(Value::as_str) {
        Some(currency) => format!("{amount} {currency}"),
        None => amount,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_purchase_mail_lists_order_seats_and_amount() {
        let mail = compose(
            "order.purchased",
            &json!({
                "orderId": "o-1", "eventId": "e-1", "seatIds": ["A-1", "A-2"],
                "amount": 1999.5, "currency": "INR", "email": "ann@holdfast.test",
            }),
        )
        .unwrap();
        assert_eq!(mail.to, "ann@holdfast.test");
        assert_eq!(mail.subject, "Your tickets: order o-1");
        assert!(mail.body.contains("Seats: A-1, A-2"), "{}", mail.body);
        assert!(mail.body.contains("Paid: 1999.5 INR"), "{}", mail.body);
    }

    #[test]
    fn a_cancellation_mail_says_whether_the_whole_order_went() {
        let payload = |status| {
            json!({
                "orderId": "o-1", "eventId": "e-1", "seatIds": ["A-2"], "status": status,
                "refund": {"amount": 250, "currency": "EUR"}, "email": "ann@holdfast.test",
            })
        };
        let partly = compose("order.cancelled", &payload("partially_cancelled")).unwrap();
        assert_eq!(partly.subject, "Seats of order o-1 are cancelled");
        assert!(partly.body.contains("Refunded: 250 EUR"), "{}", partly.body);
        let whole = compose("order.cancelled", &payload("cancelled")).unwrap();
        assert_eq!(whole.subject, "Order o-1 is cancelled");
    }

    #[test]
    fn offers_say_until_when() {
        let mail = compose(
            "waitlist.offered",
            &json!({
                "eventId": "e-1", "holdId": "offer-1", "seatIds": ["B-3"],
                "expiresAt": "2026-11-23T10:00:00Z", "email": "bob@holdfast.test",
            }),
        )
        .unwrap();
        assert!(mail.body.contains("Buy them before: 2026-11-23T10:00:00Z"));
        let expired = compose(
            "waitlist.expired",
            &json!({"eventId": "e-1", "holdId": "offer-1", "email": "bob@holdfast.test"}),
        )
        .unwrap();
        assert_eq!(expired.subject, "Your waitlist offer has ended");
    }

    #[test]
    fn a_removal_says_why_and_what_to_do() {
        let mail = compose(
            "waitlist.removed",
            &json!({"eventId": "e-1", "seats": 6, "maxSeats": 4, "email": "cy@holdfast.test"}),
        )
        .unwrap();
        assert_eq!(mail.subject, "You were taken off a waitlist");
        assert!(mail.body.contains("You asked for 6 seats"), "{}", mail.body);
        assert!(mail.body.contains("for at most 4 seats"), "{}", mail.body);
    }

    #[test]
    fn no_address_or_another_key_makes_no_mail() {
        let purchase = json!({"orderId": "o-1", "email": null});
        assert_eq!(compose("order.purchased", &purchase), None);
        let other = json!({"orderId": "o-1", "email": "ann@holdfast.test"});
        assert_eq!(compose("event.created", &other), None);
        assert!(compose("order.purchased", &other).is_some());
    }
}
