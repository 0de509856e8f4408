//! What each announcement says to the people it concerns: mails in plain text with an HTML
//! alternative, and for a purchase the tickets' QR codes (inline images) and an iCalendar
//! invitation (`event.ics`).
//!
//! Every message the orders service announces carries the addresses of the people it concerns
//! and what their mail shows — the event's title, date, time zone and place, the seats as
//! people read them, the tickets' passes — so composing needs no other service. A message
//! stored before those were carried still makes a mail, naming the event by its id; one
//! without an address makes none. Messages are read as the types of
//! `holdfast_common::messages`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use holdfast_common::bus::BusMessage;
use holdfast_common::html::escape;
use holdfast_common::messages::{
    DecodeError, EventSummary, Message, OrderCancelled, OrderPurchased, SeatLabel,
    TicketTransferred, WaitlistExpired, WaitlistOffered, WaitlistRemoved,
};
use holdfast_common::when::format_local;
use serde::{Deserialize, Serialize};
use serde_json::Number;

/// The routing keys that make mail.
pub const ROUTING_KEYS: [&str; 6] = [
    OrderPurchased::TYPE,
    OrderCancelled::TYPE,
    WaitlistOffered::TYPE,
    WaitlistExpired::TYPE,
    WaitlistRemoved::TYPE,
    TicketTransferred::TYPE,
];

/// One mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    /// The plain-text part.
    pub body: String,
    /// The HTML alternative.
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// A file sent with a mail: inline (an image the HTML shows by `cid:`) or attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    /// Set: shown inline, referred to as `cid:<contentId>`.
    pub content_id: Option<String>,
    /// The bytes, base64.
    pub data: String,
}

impl Attachment {
    pub fn bytes(&self) -> Option<Vec<u8>> {
        STANDARD.decode(&self.data).ok()
    }
}

/// The mails that `message` makes (none for other types and for messages without an address);
/// an error for a message of a mail type that does not decode.
pub fn compose(message: &BusMessage) -> Result<Vec<Mail>, DecodeError> {
    let composed = match message.routing_key.as_str() {
        OrderPurchased::TYPE => purchased(&message.decode()?).into_iter().collect(),
        OrderCancelled::TYPE => cancelled(&message.decode()?).into_iter().collect(),
        WaitlistOffered::TYPE => offered(&message.decode()?).into_iter().collect(),
        WaitlistExpired::TYPE => expired(&message.decode()?).into_iter().collect(),
        WaitlistRemoved::TYPE => removed(&message.decode()?).into_iter().collect(),
        TicketTransferred::TYPE => transferred(&message.decode()?),
        _ => Vec::new(),
    };
    Ok(composed)
}

/// A mail's text, kept as paragraphs and lists so that both parts say the same.
#[derive(Default)]
struct Letter {
    blocks: Vec<Block>,
    attachments: Vec<Attachment>,
}

enum Block {
    Paragraph(String),
    /// `label: value` lines.
    Facts(Vec<(String, String)>),
    List(String, Vec<String>),
    /// A ticket: its seat and its QR code (inline image `cid`).
    Ticket {
        seat: String,
        cid: String,
    },
}

impl Letter {
    fn paragraph(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    fn facts(mut self, facts: Vec<(&str, String)>) -> Self {
        let facts = facts
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        self.blocks.push(Block::Facts(facts));
        self
    }

    fn list(mut self, title: &str, items: Vec<String>) -> Self {
        if !items.is_empty() {
            self.blocks.push(Block::List(title.to_string(), items));
        }
        self
    }

    /// The mail to `email` when it is a usable address.
    fn to(self, email: Option<&str>, subject: String) -> Option<Mail> {
        let to = email.filter(|address| !address.is_empty())?;
        Some(Mail {
            to: to.to_string(),
            body: self.text(),
            html: Some(self.html(&subject)),
            subject,
            attachments: self.attachments,
        })
    }

    fn text(&self) -> String {
        let mut text = String::new();
        for block in &self.blocks {
            match block {
                Block::Paragraph(p) => text.push_str(p),
                Block::Facts(facts) => {
                    let lines: Vec<String> =
                        facts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    text.push_str(&lines.join("\n"));
                }
                Block::List(title, items) => {
                    text.push_str(title);
                    text.push(':');
                    for item in items {
                        text.push_str("\n  - ");
                        text.push_str(item);
                    }
                }
                Block::Ticket { seat, .. } => {
                    text.push_str(&format!("Ticket: {seat} (its QR code is attached)"))
                }
            }
            text.push_str("\n\n");
        }
        text.trim_end().to_string() + "\n"
    }

    fn html(&self, subject: &str) -> String {
        let mut html = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title></head>\
             <body style=\"font-family:sans-serif;line-height:1.4\">",
            escape(subject)
        );
        for block in &self.blocks {
            match block {
                Block::Paragraph(p) => html.push_str(&format!("<p>{}</p>", escape(p))),
                Block::Facts(facts) => {
                    html.push_str("<table>");
                    for (k, v) in facts {
                        html.push_str(&format!(
                            "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                            escape(k),
                            escape(v)
                        ));
                    }
                    html.push_str("</table>");
                }
                Block::List(title, items) => {
                    html.push_str(&format!("<p>{}:</p><ul>", escape(title)));
                    for item in items {
                        html.push_str(&format!("<li>{}</li>", escape(item)));
                    }
                    html.push_str("</ul>");
                }
                Block::Ticket { seat, cid } => html.push_str(&format!(
                    "<div style=\"margin:1em 0\"><p><strong>{}</strong></p>\
                     <img src=\"cid:{cid}\" alt=\"QR code of the ticket for {}\" width=\"240\" height=\"240\"></div>",
                    escape(seat),
                    escape(seat)
                )),
            }
        }
        html.push_str("</body></html>");
        html
    }
}

/// The event as a mail names it: its title, else its id.
fn title(event: Option<&EventSummary>, event_id: &str) -> String {
    event
        .map(|e| e.title.trim())
        .filter(|t| !t.is_empty())
        .map_or_else(|| format!("event {event_id}"), str::to_string)
}

/// The event's title, when (in its time zone) and where.
fn event_facts(event: Option<&EventSummary>, event_id: &str) -> Vec<(&'static str, String)> {
    let when = event
        .and_then(|e| format_local(e.date.as_deref()?, e.timezone.as_deref()))
        .unwrap_or_default();
    let place = event.and_then(|e| e.location.clone()).unwrap_or_default();
    vec![
        ("Event", title(event, event_id)),
        ("When", when),
        ("Where", place),
    ]
}

/// The seats as people read them (their ids for messages without labels).
fn seat_names(labels: &[SeatLabel], ids: &[String]) -> Vec<String> {
    if labels.is_empty() {
        ids.to_vec()
    } else {
        labels.iter().map(|l| l.label.clone()).collect()
    }
}

/// `1999.50 INR`: major units with two decimals, as the amounts travel (exact decimals).
fn price(amount: &Number, currency: &str) -> String {
    let text = amount.to_string();
    let (units, cents) = text.split_once('.').unwrap_or((&text, ""));
    let cents = format!("{cents:0<2}");
    format!("{units}.{cents} {currency}")
}

fn purchased(m: &OrderPurchased) -> Option<Mail> {
    let event = m.event.as_ref();
    let name = title(event, &m.event_id);
    let mut facts = event_facts(event, &m.event_id);
    facts.push(("Paid", price(&m.amount, &m.currency)));
    facts.push(("Order", m.order_id.clone()));
    let mut letter = Letter::default()
        .paragraph("Thank you for your order. Here are your tickets.")
        .facts(facts)
        .list("Seats", seat_names(&m.seats, &m.seat_ids));
    for (n, ticket) in m.tickets.iter().enumerate() {
        let Some(png) = holdfast_common::qr::png(&ticket.pass) else {
            continue;
        };
        let cid = format!("ticket-{}@holdfast", n + 1);
        let seat = m
            .seats
            .iter()
            .find(|s| s.seat_id == ticket.seat_id)
            .map_or_else(|| ticket.seat_id.clone(), |s| s.label.clone());
        letter.blocks.push(Block::Ticket {
            seat,
            cid: cid.clone(),
        });
        letter.attachments.push(Attachment {
            filename: format!("ticket-{}.png", n + 1),
            content_type: "image/png".into(),
            content_id: Some(cid),
            data: STANDARD.encode(png),
        });
    }
    letter = letter.paragraph(
        "Show one QR code per seat at the door, on your phone or printed. Your tickets are \
         also under your orders, and each can be given to someone else from there.",
    );
    if let Some(calendar) = invitation(m) {
        letter.attachments.push(Attachment {
            filename: "event.ics".into(),
            content_type: "text/calendar; method=PUBLISH; charset=UTF-8".into(),
            content_id: None,
            data: STANDARD.encode(calendar),
        });
    }
    letter.to(m.email.as_deref(), format!("Your tickets for {name}"))
}

/// An iCalendar event for the purchase (RFC 5545); `None` when the event's date is unknown.
fn invitation(m: &OrderPurchased) -> Option<String> {
    let event = m.event.as_ref()?;
    let start: jiff::Timestamp = event.date.as_deref()?.parse().ok()?;
    let utc = |t: jiff::Timestamp| t.strftime("%Y%m%dT%H%M%SZ").to_string();
    let seats = seat_names(&m.seats, &m.seat_ids).join(", ");
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//Holdfast//Tickets//EN".into(),
        "METHOD:PUBLISH".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{}@holdfast", m.order_id),
        format!("DTSTAMP:{}", utc(jiff::Timestamp::now())),
        format!("DTSTART:{}", utc(start)),
        format!("SUMMARY:{}", ics_text(&event.title)),
        format!(
            "DESCRIPTION:{}",
            ics_text(&format!("Seats: {seats}\nOrder: {}", m.order_id))
        ),
    ];
    if let Some(place) = event.location.as_deref().filter(|p| !p.is_empty()) {
        lines.push(format!("LOCATION:{}", ics_text(place)));
    }
    lines.extend(["END:VEVENT".to_string(), "END:VCALENDAR".into()]);
    Some(lines.iter().map(|l| fold(l)).collect::<String>())
}

/// A TEXT value: backslashes, commas, semicolons and line breaks escaped.
fn ics_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// One content line, folded at 75 octets (continuations start with a space), ended by CRLF.
fn fold(line: &str) -> String {
    let mut folded = String::new();
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            folded.push_str("\r\n ");
            width = 1;
        }
        folded.push(c);
        width += c.len_utf8();
    }
    folded.push_str("\r\n");
    folded
}

fn cancelled(m: &OrderCancelled) -> Option<Mail> {
    let event = m.event.as_ref();
    let name = title(event, &m.event_id);
    let whole = m.status == "cancelled";
    let mut facts = event_facts(event, &m.event_id);
    facts.push(("Refunded", price(&m.refund.amount, &m.refund.currency)));
    facts.push(("Order", m.order_id.clone()));
    Letter::default()
        .paragraph(if whole {
            "Your order is cancelled."
        } else {
            "Some seats of your order are cancelled; the others still stand."
        })
        .facts(facts)
        .list("Seats cancelled", seat_names(&m.seats, &m.seat_ids))
        .paragraph(
            "Their tickets no longer enter. The refund goes back to the payment you bought with.",
        )
        .to(
            m.email.as_deref(),
            if whole {
                format!("Your order for {name} is cancelled")
            } else {
                format!("Seats of your order for {name} are cancelled")
            },
        )
}

fn offered(m: &WaitlistOffered) -> Option<Mail> {
    let event = m.event.as_ref();
    let until = event
        .and_then(|e| format_local(&m.expires_at, e.timezone.as_deref()))
        .or_else(|| format_local(&m.expires_at, None))
        .unwrap_or_else(|| m.expires_at.clone());
    let mut facts = event_facts(event, &m.event_id);
    facts.push(("Buy them before", until));
    facts.push(("Hold", m.hold_id.clone()));
    Letter::default()
        .paragraph("Seats came free and you are next on the waitlist.")
        .facts(facts)
        .list("Seats held for you", seat_names(&m.seats, &m.seat_ids))
        .paragraph("After that they pass to the next person in line.")
        .to(
            m.email.as_deref(),
            format!("Seats are waiting for you: {}", title(event, &m.event_id)),
        )
}

fn expired(m: &WaitlistExpired) -> Option<Mail> {
    Letter::default()
        .paragraph(
            "The seats held for you were not bought in time and passed to the next person in line.",
        )
        .facts(event_facts(None, &m.event_id))
        .paragraph("Join the waitlist again to be offered seats that come free.")
        .to(m.email.as_deref(), "Your waitlist offer has ended".into())
}

fn removed(m: &WaitlistRemoved) -> Option<Mail> {
    let (wanted, most) = (m.seats, m.max_seats);
    Letter::default()
        .paragraph(format!(
            "You asked for {wanted} seats, but no one may now hold more than {most} seats at \
             once, so no offer could ever be made to you. You were taken off the waitlist so \
             that it does not hold up the people behind you."
        ))
        .facts(event_facts(None, &m.event_id))
        .paragraph(format!(
            "Join the waitlist again for at most {most} seats to be offered seats that come free."
        ))
        .to(m.email.as_deref(), "You were taken off a waitlist".into())
}

/// One mail to the receiver, one to the giver.
fn transferred(m: &TicketTransferred) -> Vec<Mail> {
    let event = m.event.as_ref();
    let name = title(event, &m.event_id);
    let seat = m
        .seat
        .as_ref()
        .map_or_else(|| m.seat_id.clone(), |s| s.label.clone());
    let mut facts = event_facts(event, &m.event_id);
    facts.push(("Seat", seat.clone()));
    facts.push(("Ticket", m.ticket_id.clone()));
    let giver = m.from_email.clone().unwrap_or_else(|| "Someone".into());
    let to_receiver = Letter::default()
        .paragraph(format!("{giver} gave you a ticket."))
        .facts(facts.clone())
        .paragraph(match &m.claim_code {
            Some(code) => format!(
                "To take it, sign in (or sign up) with this address, {}, and claim it with this \
                 code: {code}. It is then under your tickets, with its QR code.",
                m.to_email
            ),
            None => format!(
                "Sign in (or sign up) with this address, {}, to find it under your tickets.",
                m.to_email
            ),
        })
        .to(Some(&m.to_email), format!("A ticket for {name} is yours"));
    let to_giver = Letter::default()
        .paragraph(format!("You gave your ticket to {}.", m.to_email))
        .facts(facts)
        .paragraph("Its old QR code no longer enters: the ticket was reissued to them.")
        .to(
            m.from_email.as_deref(),
            format!("You gave away your ticket for {name}"),
        );
    to_receiver.into_iter().chain(to_giver).collect()
}

#[cfg(test)]
mod tests {
    use holdfast_common::ticket_pass::{Pass, PassSigner};
    use serde_json::{Value, json};

    use super::*;

    /// The envelope of a `routing_key` message with `payload`, as the bus delivers it.
    fn delivered(routing_key: &str, payload: Value) -> BusMessage {
        BusMessage::with_version(routing_key, 1, payload).unwrap()
    }

    fn compose_one(routing_key: &str, payload: Value) -> Option<Mail> {
        let mut mails = compose(&delivered(routing_key, payload)).unwrap();
        assert!(mails.len() <= 1);
        mails.pop()
    }

    fn pass() -> String {
        PassSigner::new("k1", &[3; 32])
            .sign(&Pass {
                ticket_id: uuid::Uuid::new_v4(),
                version: 1,
                secret: [1; 6],
                event_id: "6650c0ffee0000000000abcd".into(),
                seat_id: "stalls-A-1".into(),
            })
            .unwrap()
    }

    fn event() -> Value {
        json!({"title": "Tosca", "date": "2027-05-05T18:00:00Z", "timezone": "Europe/Paris",
               "location": "Opéra Bastille, Paris"})
    }

    /// A purchase as orders announces it now, and as messages stored before carried it.
    fn purchase(email: Value, rich: bool) -> Value {
        let mut payload = json!({
            "orderId": "o-1", "userId": "u-1", "eventId": "e-1", "seatIds": ["stalls-A-1", "stalls-A-2"],
            "amount": 1999.5, "currency": "EUR", "paymentIntentId": "pi-1", "email": email,
        });
        if rich {
            payload["event"] = event();
            payload["seats"] = json!([
                {"seatId": "stalls-A-1", "label": "Stalls, row A, seat 1"},
                {"seatId": "stalls-A-2", "label": "Stalls, row A, seat 2"},
            ]);
            payload["tickets"] = json!([
                {"ticketId": "t-1", "seatId": "stalls-A-1", "pass": pass()},
                {"ticketId": "t-2", "seatId": "stalls-A-2", "pass": pass()},
            ]);
        }
        payload
    }

    #[test]
    fn a_purchase_mail_names_the_event_seats_amount_and_carries_tickets_and_an_invitation() {
        let mail = compose_one(
            "order.purchased",
            purchase(json!("ann@holdfast.test"), true),
        )
        .unwrap();
        assert_eq!(mail.to, "ann@holdfast.test");
        assert_eq!(mail.subject, "Your tickets for Tosca");
        for expected in [
            "Event: Tosca",
            "When: Wed 5 May 2027, 20:00 (Europe/Paris)",
            "Where: Opéra Bastille, Paris",
            "Paid: 1999.50 EUR",
            "  - Stalls, row A, seat 2",
            "Ticket: Stalls, row A, seat 1",
        ] {
            assert!(
                mail.body.contains(expected),
                "{expected:?} in {}",
                mail.body
            );
        }
        let html = mail.html.as_deref().unwrap();
        assert!(
            html.contains("<img src=\"cid:ticket-1@holdfast\""),
            "{html}"
        );
        assert!(
            html.contains("Opéra Bastille") && html.contains("1999.50 EUR"),
            "{html}"
        );
        let images: Vec<&Attachment> = mail
            .attachments
            .iter()
            .filter(|a| a.content_id.is_some())
            .collect();
        assert_eq!(images.len(), 2);
        assert!(images[0].bytes().unwrap().starts_with(b"\x89PNG"));
        let ics = mail
            .attachments
            .iter()
            .find(|a| a.filename == "event.ics")
            .unwrap();
        let ics = String::from_utf8(ics.bytes().unwrap()).unwrap();
        for expected in [
            "BEGIN:VEVENT",
            "DTSTART:20270505T180000Z",
            "SUMMARY:Tosca",
            "LOCATION:Opéra Bastille\\, Paris",
            "UID:o-1@holdfast",
        ] {
            assert!(ics.contains(expected), "{expected:?} in {ics}");
        }
        assert!(ics.lines().all(|l| l.len() <= 76), "{ics}");
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn a_purchase_stored_before_events_were_carried_still_makes_a_mail() {
        let mail = compose_one(
            "order.purchased",
            purchase(json!("ann@holdfast.test"), false),
        )
        .unwrap();
        assert_eq!(mail.subject, "Your tickets for event e-1");
        assert!(mail.body.contains("  - stalls-A-1"), "{}", mail.body);
        assert!(mail.attachments.is_empty());
    }

    #[test]
    fn a_cancellation_mail_says_whether_the_whole_order_went() {
        let payload = |status| {
            json!({
                "orderId": "o-1", "userId": "u-1", "eventId": "e-1", "seatIds": ["A-2"],
                "status": status, "cancelledBy": "u-1", "email": "ann@holdfast.test",
                "refund": {"refundId": "r-1", "amount": 250, "currency": "EUR", "paymentIntentId": null},
                "event": event(), "seats": [{"seatId": "A-2", "label": "Row 1, seat 2"}],
            })
        };
        let partly = compose_one("order.cancelled", payload("partially_cancelled")).unwrap();
        assert_eq!(
            partly.subject,
            "Seats of your order for Tosca are cancelled"
        );
        assert!(
            partly.body.contains("Refunded: 250.00 EUR"),
            "{}",
            partly.body
        );
        assert!(partly.body.contains("  - Row 1, seat 2"), "{}", partly.body);
        let whole = compose_one("order.cancelled", payload("cancelled")).unwrap();
        assert_eq!(whole.subject, "Your order for Tosca is cancelled");
    }

    #[test]
    fn offers_say_until_when_in_the_events_time() {
        let mail = compose_one(
            "waitlist.offered",
            json!({
                "eventId": "e-1", "userId": "u-2", "holdId": "offer-1", "seatIds": ["B-3"],
                "expiresAt": "2026-11-23T10:00:00Z", "email": "bob@holdfast.test", "event": event(),
            }),
        )
        .unwrap();
        assert!(
            mail.body
                .contains("Buy them before: Mon 23 Nov 2026, 11:00 (Europe/Paris)"),
            "{}",
            mail.body
        );
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
    fn a_transfer_mails_the_receiver_and_the_giver() {
        let mails = compose(&delivered(
            "ticket.transferred",
            json!({
                "transferId": "x-1", "ticketId": "t-1", "eventId": "e-1", "seatId": "A-1",
                "orderId": "o-1", "fromUserId": "u-1", "fromEmail": "ann@holdfast.test",
                "toEmail": "bob@holdfast.test", "transferredAt": "2026-11-23T10:00:00Z",
                "event": event(), "seat": {"seatId": "A-1", "label": "Stalls, row A, seat 1"},
                "claimCode": "0123456789abcdef0123456789abcdef",
            }),
        ))
        .unwrap();
        assert_eq!(mails.len(), 2);
        assert_eq!(
            (mails[0].to.as_str(), mails[0].subject.as_str()),
            ("bob@holdfast.test", "A ticket for Tosca is yours")
        );
        assert!(
            mails[0]
                .body
                .contains("ann@holdfast.test gave you a ticket"),
            "{}",
            mails[0].body
        );
        assert!(
            mails[0].body.contains("Seat: Stalls, row A, seat 1"),
            "{}",
            mails[0].body
        );
        assert_eq!(mails[1].to, "ann@holdfast.test");
        assert!(
            mails[1].body.contains("no longer enters"),
            "{}",
            mails[1].body
        );
    }

    #[test]
    fn text_is_escaped_in_html() {
        let mut payload = purchase(json!("ann@holdfast.test"), true);
        payload["event"]["title"] = json!("<script>alert(1)</script>");
        let mail = compose_one("order.purchased", payload).unwrap();
        let html = mail.html.unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn no_address_or_another_type_makes_no_mail() {
        assert_eq!(
            compose_one("order.purchased", purchase(Value::Null, true)),
            None
        );
        assert_eq!(
            compose_one("order.purchased", purchase(json!(""), true)),
            None
        );
        assert_eq!(
            compose_one("event.created", purchase(json!("ann@holdfast.test"), true)),
            None
        );
    }

    /// A renamed field is an error, not a mail that silently never goes.
    #[test]
    fn a_mail_message_missing_a_field_is_an_error() {
        let mut payload = purchase(json!("ann@holdfast.test"), true);
        payload.as_object_mut().unwrap().remove("orderId");
        let error = compose(&delivered("order.purchased", payload)).unwrap_err();
        assert!(error.to_string().contains("orderId"), "{error}");
    }

    #[test]
    fn amounts_show_two_decimals() {
        assert_eq!(price(&Number::from(5), "EUR"), "5.00 EUR");
        assert_eq!(
            price(&serde_json::from_str("12.5").unwrap(), "INR"),
            "12.50 INR"
        );
        assert_eq!(
            price(&serde_json::from_str("0.05").unwrap(), "USD"),
            "0.05 USD"
        );
    }
}
