//! The demo accounts seeded in the embedded profile (unless `DEMO_SEED=false`; never in
//! production). Their ids are fixed so other services can seed data that belongs to them.

use crate::auth::Role;

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "holdfast-demo";

pub struct DemoAccount {
    pub id: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    pub role: Role,
}

pub const DEMO_USER: DemoAccount = DemoAccount {
    id: "64d3b0000000000000000001",
    email: "user@holdfast.test",
    name: "Demo User",
    role: Role::User,
};

pub const DEMO_ORGANIZER: DemoAccount = DemoAccount {
    id: "64d3b0000000000000000002",
    email: "organizer@holdfast.test",
    name: "Demo Organizer",
    role: Role::Organizer,
};

pub const DEMO_ADMIN: DemoAccount = DemoAccount {
    id: "64d3b0000000000000000003",
    email: "admin@holdfast.test",
    name: "Demo Admin",
    role: Role::Admin,
};

pub const DEMO_ACCOUNTS: [&DemoAccount; 3] = [&DEMO_USER, &DEMO_ORGANIZER, &DEMO_ADMIN];
