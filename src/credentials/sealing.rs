//! Encryption at rest for signing keys: AES-256-GCM under `KEYGATE_MASTER_KEY`
//! (any high-entropy string; its SHA-256 is the key). Without a master key the
//! private keys are stored as they are, and the server warns at start. The two
//! never mix: with a master key every stored key is sealed (clear ones are
//! sealed in place at start), without one a sealed key stops the start
//! (OWASP Cryptographic Storage Cheat Sheet: keys encrypted at rest, and
//! fail closed rather than fall back to plaintext).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::config::MasterKey;

const SEALED_PREFIX: &str = "enc1:";

fn cipher(key: &[u8; 32]) -> Result<LessSafeKey, String> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| "invalid master key".to_string())
}

/// Seals with the master key when one is set.
pub fn seal(plain: &[u8], master_key: Option<&MasterKey>) -> Result<String, String> {
    let Some(MasterKey(key)) = master_key else {
        return Ok(STANDARD.encode(plain));
    };
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "no randomness".to_string())?;
    let mut data = plain.to_vec();
    cipher(key)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .map_err(|_| "sealing failed".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
}

/// True when `stored` was sealed under a master key.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The bytes of a key stored in clear (written without a master key).
pub fn open_clear(stored: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(stored)
        .map_err(|_| "a stored key is corrupt".to_string())
}

/// Opens what `seal` wrote. With a master key set, a key stored in clear is
/// refused: keys at rest are sealed or the node does not use them (the node
/// seals clear keys when it starts, `signing_keys::seal_stored`).
pub fn open(stored: &str, master_key: Option<&MasterKey>) -> Result<Vec<u8>, String> {
    let Some(sealed) = stored.strip_prefix(SEALED_PREFIX) else {
        if master_key.is_some() {
            return Err(
                "a signing key is stored unencrypted while KEYGATE_MASTER_KEY is set".to_string(),
            );
        }
        return open_clear(stored);
    };
    let MasterKey(key) =
        master_key.ok_or("the signing keys are encrypted: set KEYGATE_MASTER_KEY")?;
    let raw = STANDARD
        .decode(sealed)
        .map_err(|_| "a stored key is corrupt".to_string())?;
    if raw.len() < NONCE_LEN {
        return Err("a stored key is corrupt".into());
    }
    let (nonce, data) = raw.split_at(NONCE_LEN);
    let mut data = data.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| "a stored key is corrupt".to_string())?;
    let plain = cipher(key)?
        .open_in_place(nonce, Aad::empty(), &mut data)
        .map_err(|_| "cannot decrypt the signing keys: wrong KEYGATE_MASTER_KEY".to_string())?;
    Ok(plain.to_vec())
}
