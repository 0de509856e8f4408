//! The keys that sign ticket passes and the public halves scanners verify them with.
//!
//! They come from `TICKET_SIGNING_KEYS` (every replica must sign and verify alike; production
//! requires it). Without it — the embedded profile — one key is made on first start and kept
//! in `DATA_DIR/ticket-signing.key`, so passes stay valid across restarts.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use holdfast_common::config::{Settings, TicketSigningKey};
use holdfast_common::ticket_pass::{self, Pass, PassError, PassSigner, PublicKey};

use crate::domain::ticket::Ticket;

/// The id of the key the embedded profile makes.
const LOCAL_KEY_ID: &str = "local";
/// Its file under `DATA_DIR`.
const LOCAL_KEY_FILE: &str = "ticket-signing.key";

/// Signs with the first key, verifies with any.
#[derive(Debug)]
pub struct TicketKeys {
    signer: PassSigner,
    public: Vec<PublicKey>,
}

impl TicketKeys {
    /// The configured keys, or the embedded profile's own.
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        if settings.orders.ticket_signing_keys.is_empty() {
            return Self::from_keys(&[local_key(&settings.data_dir)?]);
        }
        Self::from_keys(&settings.orders.ticket_signing_keys)
    }

    /// Keys in order of preference.
    pub fn from_keys(keys: &[TicketSigningKey]) -> anyhow::Result<Self> {
        let (first, _) = keys
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("no ticket signing key"))?;
        Ok(Self {
            signer: PassSigner::new(&first.id, &first.seed),
            public: keys
                .iter()
                .map(|k| PassSigner::new(&k.id, &k.seed).public_key())
                .collect(),
        })
    }

    /// The ticket's current pass; `None` for a record that cannot be packed (never one this
    /// service made).
    pub fn pass_of(&self, ticket: &Ticket) -> Option<String> {
        self.signer.sign(&ticket.pass()?)
    }

    /// What `text` says, if it is a pass of ours.
    pub fn verify(&self, text: &str) -> Result<Pass, PassError> {
        ticket_pass::verify(text, &self.public)
    }

    /// The keys scanners verify with, the signing one first.
    pub fn public_keys(&self) -> &[PublicKey] {
        &self.public
    }
}

/// The embedded profile's key: read from `DATA_DIR`, or made and written there.
fn local_key(data_dir: &Path) -> anyhow::Result<TicketSigningKey> {
    let path = data_dir.join(LOCAL_KEY_FILE);
    if let Ok(stored) = std::fs::read_to_string(&path) {
        let seed = URL_SAFE_NO_PAD
            .decode(stored.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| anyhow::anyhow!("{} does not hold a ticket key", path.display()))?;
        return Ok(TicketSigningKey {
            id: LOCAL_KEY_ID.into(),
            seed,
        });
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    std::fs::create_dir_all(data_dir)?;
    write_private(&path, &URL_SAFE_NO_PAD.encode(seed))?;
    tracing::info!(path = %path.display(), "made a ticket signing key for this machine");
    Ok(TicketSigningKey {
        id: LOCAL_KEY_ID.into(),
        seed,
    })
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = local_key(dir.path()).unwrap();
        let again = local_key(dir.path()).unwrap();
        assert_eq!(first, again);
        let other = local_key(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(first.seed, other.seed);
        std::fs::write(dir.path().join(LOCAL_KEY_FILE), "garbage").unwrap();
        assert!(local_key(dir.path()).is_err());
    }

    #[test]
    fn passes_verify_with_every_configured_key_and_are_signed_with_the_first() {
        let keys = TicketKeys::from_keys(&[
            TicketSigningKey {
                id: "new".into(),
                seed: [2; 32],
            },
            TicketSigningKey {
                id: "old".into(),
                seed: [1; 32],
            },
        ])
        .unwrap();
        let old_pass = PassSigner::new("old", &[1; 32])
            .sign(&Pass {
                ticket_id: uuid::Uuid::new_v4(),
                version: 1,
                secret: [0; 6],
                event_id: "6650c0ffee0000000000abcd".into(),
                seat_id: "R1-S1".into(),
            })
            .unwrap();
        assert!(keys.verify(&old_pass).is_ok());
        let ids: Vec<&str> = keys
            .public_keys()
            .iter()
            .map(|k| k.key_id.as_str())
            .collect();
        assert_eq!(ids, ["new", "old"]);
    }
}
