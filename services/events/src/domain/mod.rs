//! The events service's domain: events, their fields' rules, money and dates.

pub mod event;
pub mod when;
