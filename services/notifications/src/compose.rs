//! What each announcement says to its recipient: the mails, in plain text.
//!
//! Every message the orders service announces carries the address of the person it concerns
//! (`email`: the buyer's, or the waitlisted user's when they joined), so composing needs no
//! other service. A message without an address (an order stored before addresses were kept)
//! makes no mail. Messages are read as the types of `holdfast_common::messages`.

use holdfast_common::bus::BusMessage;
use holdfast_common::messages::{
    DecodeError, Message, OrderCancelled, OrderPurchased, WaitlistExpired, WaitlistOffered,
    WaitlistRemoved,
};
use serde_json::Number;

/// The routing keys that make mail.
pub const ROUTING_KEYS: [&str; 5] = [
    OrderPurchased::TYPE,
    OrderCancelled::TYPE,
    WaitlistOffered::TYPE,
    WaitlistExpired::TYPE,
    WaitlistRemoved::TYPE,
];

/// One mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// The mail that `message` makes, if any (`None` for other types and for messages without an
/// address); an error for a message of a mail type that does not decode.
pub fn compose(message: &BusMessage) -> Result<Option<Mail>, DecodeError> {
    let composed = match message.routing_key.as_str() {
        OrderPurchased::TYPE => purchased(&message.decode()?),
        OrderCancelled::TYPE => cancelled(&message.decode()?),
        WaitlistOffered::TYPE => offered(&message.decode()?),
        WaitlistExpired::TYPE => expired(&message.decode()?),
        WaitlistRemoved::TYPE => removed(&message.decode()?),
        _ => None,
    };
    Ok(composed)
}

/// A mail to `email` when it is a usable address.
fn mail(email: Option<&String>, subject: String, body: String) -> Option<Mail> {
    let to = email.filter(|address| !address.is_empty())?;
    Some(Mail {
        to: to.clone(),
        subject,
        body,
    })
}

fn purchased(m: &OrderPurchased) -> Option<Mail> {
    let order = &m.order_id;
    mail(
        m.email.as_ref(),
        format!("Your tickets: order {order}"),
        format!(
            "Thank you for your order.\n\n\
             Order: {order}\n\
             Event: {}\n\
             Seats: {}\n\
             Paid: {}\n\n\
             Your tickets are listed under your orders.\n",
            m.event_id,
            seat_list(&m.seat_ids),
            price(&m.amount, &m.currency),
        ),
    )
}

fn cancelled(m: &OrderCancelled) -> Option<Mail> {
    let order = &m.order_id;
    let whole = m.status == "cancelled";
    mail(
        m.email.as_ref(),
        if whole {
            format!("Order {order} is cancelled")
        } else {
            format!("Seats of order {order} are cancelled")
        },
        format!(
            "{}\n\n\
             Order: {order}\n\
             Event: {}\n\
             Seats cancelled: {}\n\
             Refunded: {}\n\n\
             The refund goes back to the payment you bought with.\n",
            if whole {
                "Your order is cancelled."
            } else {
                "Some seats of your order are cancelled; the others still stand."
            },
            m.event_id,
            seat_list(&m.seat_ids),
            price(&m.refund.amount, &m.refund.currency),
        ),
    )
}

fn offered(m: &WaitlistOffered) -> Option<Mail> {
    mail(
        m.email.as_ref(),
        "Seats are waiting for you".to_string(),
        format!(
            "Seats came free and you are next on the waitlist.\n\n\
             Event: {}\n\
             Seats held for you: {}\n\
             Hold: {}\n\
             Buy them before: {}\n\n\
             After that they pass to the next person in line.\n",
            m.event_id,
            seat_list(&m.seat_ids),
            m.hold_id,
            m.expires_at,
        ),
    )
}

fn expired(m: &WaitlistExpired) -> Option<Mail> {
    mail(
        m.email.as_ref(),
        "Your waitlist offer has ended".to_string(),
        format!(
            "The seats held for you were not bought in time and passed to the next \
             person in line.\n\n\
             Event: {}\n\n\
             Join the waitlist again to be offered seats that come free.\n",
            m.event_id
        ),
    )
}

fn removed(m: &WaitlistRemoved) -> Option<Mail> {
    let (wanted, most) = (m.seats, m.max_seats);
    mail(
        m.email.as_ref(),
        "You were taken off a waitlist".to_string(),
        format!(
            "You asked for {wanted} seats, but no one may now hold more than {most} \
             seats at once, so no offer could ever be made to you. You were taken off \
             the waitlist so that it does not hold up the people behind you.\n\n\
             Event: {}\n\n\
             Join the waitlist again for at most {most} seats to be offered seats that \
             come free.\n",
            m.event_id
        ),
    )
}

fn seat_list(seats: &[String]) -> String {
    if seats.is_empty() {
        "-".into()
    } else {
        seats.join(", ")
    }
}

/// `499.99 INR`, as the amounts travel (major units, exact decimals).
fn price(amount: &Number, currency: &str) -> String {
    format!("{amount} {currency}")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The envelope of a `routing_key` message with `payload`, as the bus delivers it.
    fn delivered(routing_key: &str, payload: Value) -> BusMessage {
        BusMessage::with_version(routing_key, 1, payload).unwrap()
    }

    fn compose_one(routing_key: &str, payload: Value) -> Option<Mail> {
        compose(&delivered(routing_key, payload)).unwrap()
    }

    fn purchase(email: Value) -> Value {
        json!({
            "orderId": "o-1", "userId": "u-1", "eventId": "e-1", "seatIds": ["A-1", "A-2"],
            "amount": 1999.5, "currency": "INR", "paymentIntentId": "pi-1", "email": email,
        })
    }

    #[test]
    fn a_purchase_mail_lists_order_seats_and_amount() {
        let mail = compose_one("order.purchased", purchase(json!("ann@holdfast.test"))).unwrap();
        assert_eq!(mail.to, "ann@holdfast.test");
        assert_eq!(mail.subject, "Your tickets: order o-1");
        assert!(mail.body.contains("Seats: A-1, A-2"), "{}", mail.body);
        assert!(mail.body.contains("Paid: 1999.5 INR"), "{}", mail.body);
    }

    #[test]
    fn a_cancellation_mail_says_whether_the_whole_order_went() {
        let payload = |status| {
            json!({
                "orderId": "o-1", "userId": "u-1", "eventId": "e-1", "seatIds": ["A-2"],
                "status": status, "cancelledBy": "u-1", "email": "ann@holdfast.test",
                "refund": {"refundId": "r-1", "amount": 250, "currency": "EUR", "paymentIntentId": null},
            })
        };
        let partly = compose_one("order.cancelled", payload("partially_cancelled")).unwrap();
        assert_eq!(partly.subject, "Seats of order o-1 are cancelled");
        assert!(partly.body.contains("Refunded: 250 EUR"), "{}", partly.body);
        let whole = compose_one("order.cancelled", payload("cancelled")).unwrap();
        assert_eq!(whole.subject, "Order o-1 is cancelled");
    }

    #[test]
    fn offers_say_until_when() {
        let mail = compose_one(
            "waitlist.offered",
            json!({
                "eventId": "e-1", "userId": "u-2", "holdId": "offer-1", "seatIds": ["B-3"],
                "expiresAt": "2026-11-23T10:00:00Z", "email": "bob@holdfast.test",
            }),
        )
        .unwrap();
        assert!(mail.body.contains("Buy them before: 2026-11-23T10:00:00Z"));
        let expired = compose_one(
            "waitlist.expired",
            json!({"eventId": "e-1", "userId": "u-2", "holdId": "offer-1", "email": "bob@holdfast.test"}),
        )
        .unwrap();
        assert_eq!(expired.subject, "Your waitlist offer has ended");
    }

    #[test]
    fn a_removal_says_why_and_what_to_do() {
        let mail = compose_one(
            "waitlist.removed",
            json!({
                "eventId": "e-1", "userId": "u-3", "seats": 6, "maxSeats": 4,
                "reason": "more seats than MAX_SEATS_PER_HOLD", "email": "cy@holdfast.test",
            }),
        )
        .unwrap();
        assert_eq!(mail.subject, "You were taken off a waitlist");
        assert!(mail.body.contains("You asked for 6 seats"), "{}", mail.body);
        assert!(mail.body.contains("for at most 4 seats"), "{}", mail.body);
    }

    #[test]
    fn no_address_or_another_type_makes_no_mail() {
        assert_eq!(compose_one("order.purchased", purchase(Value::Null)), None);
        assert_eq!(compose_one("order.purchased", purchase(json!(""))), None);
        assert_eq!(
            compose_one("event.created", purchase(json!("ann@holdfast.test"))),
            None
        );
    }

    /// A renamed field is an error, not a mail that silently never goes.
    #[test]
    fn a_mail_message_missing_a_field_is_an_error() {
        let mut payload = purchase(json!("ann@holdfast.test"));
        payload.as_object_mut().unwrap().remove("orderId");
        let error = compose(&delivered("order.purchased", payload)).unwrap_err();
        assert!(error.to_string().contains("orderId"), "{error}");
    }
}
