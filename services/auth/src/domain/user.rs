//! Users and the values that make them up, each parsed once at the edge.

use holdfast_common::auth::Role;
use serde::Serialize;

/// An email address, trimmed and lower-cased: the identity users log in with, unique
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    /// Trims, lower-cases and checks the shape of an address.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("required");
        }
        if email.len() > Self::MAX_LEN {
            return Err("must be at most 254 characters");
        }
        if !validator::ValidateEmail::validate_email(&email) {
            return Err("must be an email address");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The user id: a 24-hex-digit ObjectId string, the same in every store.
pub use holdfast_common::ids::new_object_id as new_user_id;

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: Email,
    pub name: Option<String>,
    pub role: Role,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"userId": "6650c0ffee0000000000abcd", "email": "ada@example.com", "name": "Ada Lovelace", "role": "user"}))]
pub struct UserView {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            email: user.email.as_str().to_string(),
            name: user.name.clone(),
            role: user.role,
        }
    }
}

pub use holdfast_common::when::now_millis;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert_eq!(Email::parse("   "), Err("required"));
        assert_eq!(
            Email::parse("not-an-email"),
            Err("must be an email address")
        );
        assert_eq!(Email::parse("a@"), Err("must be an email address"));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err("must be at most 254 characters"));
    }
}
