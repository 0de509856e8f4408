//! Who may do what beyond their own holds and orders.

use holdfast_common::auth::{AuthUser, Role};

use crate::domain::seat::Layout;

/// Whether `caller` may manage the event: an admin, or the organizer who owns it.
pub fn runs_event(caller: &AuthUser, layout: Option<&Layout>) -> bool {
    caller.is_admin()
        || (caller.role() == Role::Organizer
            && layout.and_then(|l| l.organizer_id.as_deref()) == Some(caller.id()))
}
