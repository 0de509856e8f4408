//! Record ids as they cross the HTTP edge.
//!
//! Users and events are keyed by 24-hex-digit ObjectId strings. The stores parse them
//! case-insensitively (MongoDB's `ObjectId::parse_str`) but compare strings exactly elsewhere
//! (SQLite keys, Redis keys, caches), so an id is normalised to lower case once, where it
//! enters, and every layer below sees one spelling.

/// `id` in its canonical spelling (lower-case hex), or `None` when it is not an ObjectId.
pub fn object_id(id: &str) -> Option<String> {
    (id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

/// A new ObjectId string, in canonical spelling.
pub fn new_object_id() -> String {
    mongodb::bson::oid::ObjectId::new().to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_normalised_to_lower_case() {
        assert_eq!(
            object_id("65A1B2C3D4E5F60718293A4B").as_deref(),
            Some("65a1b2c3d4e5f60718293a4b")
        );
        assert_eq!(
            object_id("65a1b2c3d4e5f60718293a4b").as_deref(),
            Some("65a1b2c3d4e5f60718293a4b")
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "65a1",
            "65a1b2c3d4e5f60718293a4g",
            "65a1b2c3d4e5f60718293a4b0",
            "../x",
        ] {
            assert_eq!(object_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn new_ids_are_canonical() {
        let id = new_object_id();
        assert_eq!(object_id(&id).as_deref(), Some(id.as_str()));
    }
}
