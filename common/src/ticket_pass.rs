//! The signed payload of a ticket's QR code, and its verification with public keys alone.
//!
//! A pass is `<key id>.<body>.<signature>`: the body (base64url) packs the ticket id, its
//! version, its secret, the event and the seat; the signature (Ed25519, base64url) covers the
//! ASCII text `<key id>.<body>`. About 160 characters for a typical seat id: a version 9–10
//! QR code at error correction M, which phone cameras read at arm's length.
//!
//! The orders service signs passes; a scanner (or the `loadgen verify` tool) checks them with
//! the keys `GET /api/checkin/events/:eventId/keys` publishes, offline. A transfer gives the
//! ticket a new version and secret, so the old pass still verifies but names a version the
//! door knows is gone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// The body's format number, first byte of every body.
const FORMAT: u8 = 1;
/// The longest seat id a pass carries (venue seat ids are far shorter).
pub const MAX_SEAT_ID_BYTES: usize = 64;
/// The longest pass text a scanner may submit; anything longer is refused unread.
pub const MAX_PASS_LEN: usize = 512;

/// What a pass says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    /// The ticket's id: a UUID.
    pub ticket_id: uuid::Uuid,
    /// Bumped by every transfer: only the current version enters.
    pub version: u32,
    /// Renewed by every transfer, so an old pass cannot be rebuilt from public facts.
    pub secret: [u8; 6],
    /// The event's id: 24 hexadecimal digits (12 bytes).
    pub event_id: String,
    pub seat_id: String,
}

/// Why a pass was not accepted. Deliberately coarse: a scanner learns that it is not a pass
/// of ours, never which part was wrong nor whether the ticket exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error("not a valid ticket")]
    Invalid,
}

/// A signing key with the id printed in every pass it signs.
pub struct PassSigner {
    pub key_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for PassSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PassSigner({}, <secret>)", self.key_id)
    }
}

impl PassSigner {
    pub fn new(key_id: &str, seed: &[u8; 32]) -> Self {
        Self {
            key_id: key_id.to_string(),
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public half, for scanners.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The pass text for `pass`; `None` for a pass that cannot be packed (an event id that is
    /// not 24 hex digits, a seat id over [`MAX_SEAT_ID_BYTES`]).
    pub fn sign(&self, pass: &Pass) -> Option<String> {
        let body = URL_SAFE_NO_PAD.encode(pack(pass)?);
        let signed = format!("{}.{body}", self.key_id);
        let signature = self.key.sign(signed.as_bytes());
        Some(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

/// A key that verifies passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    pub key: VerifyingKey,
}

impl PublicKey {
    /// The key as published: its 32 bytes in base64url.
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.as_bytes())
    }

    /// The key `encoded` publishes.
    pub fn decode(key_id: &str, encoded: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        let key = VerifyingKey::from_bytes(&<[u8; 32]>::try_from(bytes).ok()?).ok()?;
        Some(Self {
            key_id: key_id.to_string(),
            key,
        })
    }
}

/// What `text` says, if one of `keys` signed it.
pub fn verify(text: &str, keys: &[PublicKey]) -> Result<Pass, PassError> {
    if text.len() > MAX_PASS_LEN {
        return Err(PassError::Invalid);
    }
    let (signed, signature) = text.rsplit_once('.').ok_or(PassError::Invalid)?;
    let (key_id, body) = signed.split_once('.').ok_or(PassError::Invalid)?;
    let key = keys
        .iter()
        .find(|k| k.key_id == key_id)
        .ok_or(PassError::Invalid)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .ok_or(PassError::Invalid)?;
    key.key
        .verify(signed.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| PassError::Invalid)?;
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| PassError::Invalid)?;
    unpack(&body).ok_or(PassError::Invalid)
}

/// A scanner working offline: the event's public keys and the tickets it last synced (each
/// ticket's current version, and whether it is valid). It needs nothing else: a pass must be
/// signed by one of the keys, be for the event, and name a valid ticket at its current version.
#[derive(Debug, Clone, Default)]
pub struct OfflineScanner {
    pub event_id: String,
    pub keys: Vec<PublicKey>,
    /// By ticket id: (current version, valid).
    pub tickets: std::collections::HashMap<uuid::Uuid, (u32, bool)>,
}

/// What an offline scanner makes of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfflineVerdict {
    /// Genuine, for this event, valid at its current version: let it in.
    Admit(Pass),
    /// Genuine but cancelled, or an older version than the synced one (transferred).
    Revoked,
    /// Genuine but for another event.
    WrongEvent,
    /// Genuine, but the scanner has not synced this ticket yet.
    Unknown,
    /// Not a pass of ours.
    Invalid,
}

impl OfflineScanner {
    /// Applies one synced ticket (a later version replaces an earlier one; the same version
    /// again, its newer status); `false` for an id that is no ticket id.
    pub fn sync(&mut self, ticket_id: &str, version: u32, valid: bool) -> bool {
        let Ok(ticket_id) = uuid::Uuid::parse_str(ticket_id) else {
            return false;
        };
        let entry = self.tickets.entry(ticket_id).or_insert((version, valid));
        if version >= entry.0 {
            *entry = (version, valid);
        }
        true
    }

    pub fn check(&self, text: &str) -> OfflineVerdict {
        let Ok(pass) = verify(text, &self.keys) else {
            return OfflineVerdict::Invalid;
        };
        if pass.event_id != self.event_id {
            return OfflineVerdict::WrongEvent;
        }
        match self.tickets.get(&pass.ticket_id) {
            None => OfflineVerdict::Unknown,
            Some(&(version, true)) if version == pass.version => OfflineVerdict::Admit(pass),
            Some(_) => OfflineVerdict::Revoked,
        }
    }
}

fn pack(pass: &Pass) -> Option<Vec<u8>> {
    let event = decode_hex::<12>(&pass.event_id)?;
    let seat = pass.seat_id.as_bytes();
    if seat.is_empty() || seat.len() > MAX_SEAT_ID_BYTES {
        return None;
    }
    let mut body = Vec::with_capacity(40 + seat.len());
    body.push(FORMAT);
    body.extend_from_slice(pass.ticket_id.as_bytes());
    body.extend_from_slice(&pass.version.to_be_bytes());
    body.extend_from_slice(&pass.secret);
    body.extend_from_slice(&event);
    body.extend_from_slice(seat);
    Some(body)
}

fn unpack(body: &[u8]) -> Option<Pass> {
    let (&format, rest) = body.split_first()?;
    if format != FORMAT || rest.len() < 16 + 4 + 6 + 12 + 1 {
        return None;
    }
    let (ticket, rest) = rest.split_at(16);
    let (version, rest) = rest.split_at(4);
    let (secret, rest) = rest.split_at(6);
    let (event, seat) = rest.split_at(12);
    if seat.len() > MAX_SEAT_ID_BYTES {
        return None;
    }
    Some(Pass {
        ticket_id: uuid::Uuid::from_slice(ticket).ok()?,
        version: u32::from_be_bytes(version.try_into().ok()?),
        secret: secret.try_into().ok()?,
        event_id: to_hex(event),
        seat_id: String::from_utf8(seat.to_vec()).ok()?,
    })
}

/// `bytes` as lower-case hexadecimal digits.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `N` bytes that `2 × N` hexadecimal digits spell.
pub fn decode_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass() -> Pass {
        Pass {
            ticket_id: uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0),
            version: 3,
            secret: [1, 2, 3, 4, 5, 6],
            event_id: "6650c0ffee0000000000abcd".into(),
            seat_id: "stalls-A-12".into(),
        }
    }

    #[test]
    fn a_signed_pass_verifies_with_the_public_key_alone_and_reads_back() {
        let signer = PassSigner::new("k1", &[7; 32]);
        let text = signer.sign(&pass()).unwrap();
        assert!(text.len() < 170, "{} characters: {text}", text.len());
        let public = PublicKey::decode("k1", &signer.public_key().encoded()).unwrap();
        assert_eq!(verify(&text, &[public]), Ok(pass()));
    }

    #[test]
    fn altered_foreign_and_malformed_passes_are_invalid() {
        let signer = PassSigner::new("k1", &[7; 32]);
        let keys = [signer.public_key()];
        let text = signer.sign(&pass()).unwrap();
        // Another seat, same signature.
        let mut other = pass();
        other.seat_id = "stalls-A-13".into();
        let forged_body = URL_SAFE_NO_PAD.encode(pack(&other).unwrap());
        let parts: Vec<&str> = text.split('.').collect();
        let swapped = format!("{}.{forged_body}.{}", parts[0], parts[2]);
        // Every single character changed in turn.
        for i in 0..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            if altered != text {
                assert_eq!(verify(&altered, &keys), Err(PassError::Invalid), "{i}");
            }
        }
        let stranger = PassSigner::new("k1", &[8; 32]).sign(&pass()).unwrap();
        for bad in [
            swapped.as_str(),
            stranger.as_str(),
            "",
            "k1",
            "k1..",
            "k2.x.y",
            &"k1.".repeat(200),
        ] {
            assert_eq!(verify(bad, &keys), Err(PassError::Invalid), "{bad}");
        }
    }

    #[test]
    fn a_rotated_key_still_verifies_the_passes_it_signed() {
        let old = PassSigner::new("old", &[1; 32]);
        let new = PassSigner::new("new", &[2; 32]);
        let keys = [new.public_key(), old.public_key()];
        assert!(verify(&old.sign(&pass()).unwrap(), &keys).is_ok());
        assert!(verify(&new.sign(&pass()).unwrap(), &keys).is_ok());
        assert!(verify(&old.sign(&pass()).unwrap(), &keys[..1]).is_err());
    }

    #[test]
    fn an_offline_scanner_admits_current_valid_passes_only() {
        let signer = PassSigner::new("k1", &[7; 32]);
        let mut scanner = OfflineScanner {
            event_id: pass().event_id,
            keys: vec![signer.public_key()],
            ..OfflineScanner::default()
        };
        let text = signer.sign(&pass()).unwrap();
        assert_eq!(scanner.check(&text), OfflineVerdict::Unknown);
        let id = pass().ticket_id.to_string();
        assert!(scanner.sync(&id, 3, true));
        assert!(!scanner.sync("not-a-ticket", 3, true));
        assert_eq!(scanner.check(&text), OfflineVerdict::Admit(pass()));
        // Transferred: version 4 synced; the version-3 pass no longer enters.
        scanner.sync(&id, 4, true);
        assert_eq!(scanner.check(&text), OfflineVerdict::Revoked);
        // An older delta arriving late changes nothing.
        scanner.sync(&id, 3, true);
        assert_eq!(scanner.check(&text), OfflineVerdict::Revoked);
        let mut other_event = pass();
        other_event.event_id = "6650c0ffee0000000000ffff".into();
        assert_eq!(
            scanner.check(&signer.sign(&other_event).unwrap()),
            OfflineVerdict::WrongEvent
        );
        assert_eq!(scanner.check("k1.AAAA.BBBB"), OfflineVerdict::Invalid);
    }

    #[test]
    fn passes_that_cannot_be_packed_are_not_signed() {
        let signer = PassSigner::new("k1", &[7; 32]);
        let mut bad_event = pass();
        bad_event.event_id = "not-hex".into();
        let mut long_seat = pass();
        long_seat.seat_id = "x".repeat(MAX_SEAT_ID_BYTES + 1);
        assert_eq!(signer.sign(&bad_event), None);
        assert_eq!(signer.sign(&long_seat), None);
    }
}
