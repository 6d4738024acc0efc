//! Sealed capabilities and the keys that seal them.
//!
//! A capability that leaves the kernel (to be stored, or restored into a
//! restarted server) travels as a [`Token`]: a fixed-layout description of
//! the capability followed by an HMAC-SHA256 over it. Only a holder of the
//! sealing key can make a token that [`unseal`] accepts; changing any bit
//! makes it fail (the MAC comparison is constant-time).
//!
//! Two protection domains that share no secret agree on a sealing key with
//! ML-KEM-768 (FIPS 203): the verifier publishes an encapsulation key, the
//! sealer encapsulates fresh randomness to it, and both run the shared
//! secret through HMAC-SHA256 with a fixed label ([`kem_encapsulate`],
//! [`KemKeypair::decapsulate`]). The kernel does this with servers that
//! verify user-level handles themselves.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;
use hmac::{KeyInit, Mac};
use ml_kem::kem::{Decapsulate, KeyExport, TryKeyInit};
use ml_kem::{FromSeed, MlKem768};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Bytes in a sealing key.
pub const KEY_LEN: usize = 32;
/// Bytes of the sealed description.
pub const PAYLOAD_LEN: usize = 48;
/// Bytes of the MAC.
pub const MAC_LEN: usize = 32;
/// Bytes in a token.
pub const TOKEN_LEN: usize = PAYLOAD_LEN + MAC_LEN;
/// Bytes of an ML-KEM-768 encapsulation (public) key.
pub const KEM_PUBLIC_LEN: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
pub const KEM_CIPHERTEXT_LEN: usize = 1088;
/// Token format version (first payload byte).
const VERSION: u8 = 2;

/// A secret sealing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey(pub [u8; KEY_LEN]);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

/// What a token says about the capability it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// Object kind (`exo_abi::CapKind` number).
    pub kind: u8,
    /// Object index.
    pub object: u32,
    /// Generation of the object's slot, so a token never names a later
    /// object in the same slot.
    pub generation: u32,
    /// Rights bits.
    pub rights: u32,
    /// Encoded lattice label.
    pub label: u32,
    /// Endpoint badge (0 otherwise).
    pub badge: u64,
    /// Which sealing key (0 = the kernel's boot key).
    pub key_id: u32,
    /// Free for the sealer (e.g. a serial number).
    pub nonce: u64,
    /// The sealed capability's node in the kernel's derivation tree: a
    /// restored capability is derived from it, so revoking the original
    /// (or an ancestor) reaches every restored copy, and a token whose
    /// node is gone restores nothing.
    pub node: u32,
    /// Generation of that node's slot (a later node in the same slot is
    /// another capability).
    pub node_generation: u32,
}

/// A sealed capability.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token(pub [u8; TOKEN_LEN]);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({:02x?}..)", &self.0[..8])
    }
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// Not `TOKEN_LEN` bytes.
    BadLength,
    /// The MAC does not match: forged, altered, or sealed under another key.
    BadMac,
    /// An unknown format version (only checked after the MAC).
    BadVersion,
    /// An ML-KEM key or ciphertext is malformed.
    BadKem,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SealError::BadLength => "token has the wrong length",
            SealError::BadMac => "token MAC does not verify (forged or altered)",
            SealError::BadVersion => "unknown token version",
            SealError::BadKem => "malformed ML-KEM key or ciphertext",
        })
    }
}

impl Payload {
    fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let mut b = [0u8; PAYLOAD_LEN];
        b[0] = VERSION;
        b[1] = self.kind;
        b[4..8].copy_from_slice(&self.object.to_le_bytes());
        b[8..12].copy_from_slice(&self.generation.to_le_bytes());
        b[12..16].copy_from_slice(&self.rights.to_le_bytes());
        b[16..20].copy_from_slice(&self.label.to_le_bytes());
        b[20..24].copy_from_slice(&self.key_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.badge.to_le_bytes());
        b[32..40].copy_from_slice(&self.nonce.to_le_bytes());
        b[40..44].copy_from_slice(&self.node.to_le_bytes());
        b[44..48].copy_from_slice(&self.node_generation.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Payload {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Payload {
            kind: b[1],
            object: u32_at(4),
            generation: u32_at(8),
            rights: u32_at(12),
            label: u32_at(16),
            key_id: u32_at(20),
            badge: u64_at(24),
            nonce: u64_at(32),
            node: u32_at(40),
            node_generation: u32_at(44),
        }
    }
}

fn mac(key: &SealKey) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(&key.0).expect("HMAC takes any key length")
}

/// Seals `payload` under `key`.
pub fn seal(key: &SealKey, payload: &Payload) -> Token {
    let body = payload.encode();
    let mut m = mac(key);
    m.update(&body);
    let tag = m.finalize().into_bytes();
    let mut t = [0u8; TOKEN_LEN];
    t[..PAYLOAD_LEN].copy_from_slice(&body);
    t[PAYLOAD_LEN..].copy_from_slice(&tag);
    Token(t)
}

/// Checks `bytes` against `key` and returns what it describes.
pub fn unseal(key: &SealKey, bytes: &[u8]) -> Result<Payload, SealError> {
    if bytes.len() != TOKEN_LEN {
        return Err(SealError::BadLength);
    }
    let (body, tag) = bytes.split_at(PAYLOAD_LEN);
    let mut m = mac(key);
    m.update(body);
    m.verify_slice(tag).map_err(|_| SealError::BadMac)?;
    if body[0] != VERSION {
        return Err(SealError::BadVersion);
    }
    Ok(Payload::decode(body))
}

/// Derives a sealing key from secret input material (a KEM shared secret
/// or boot entropy) with HMAC-SHA256 under a fixed label.
pub fn derive_key(material: &[u8], label: &[u8]) -> SealKey {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(label).expect("any length");
    m.update(material);
    SealKey(m.finalize().into_bytes().into())
}

const KEM_LABEL: &[u8] = b"ExoV6 ML-KEM-768 sealing key v1";

/// The verifier's side of key establishment: an ML-KEM-768 key pair.
pub struct KemKeypair {
    dk: ml_kem::ml_kem_768::DecapsulationKey,
}

impl KemKeypair {
    /// The key pair generated from 64 bytes of secret randomness.
    pub fn from_seed(seed: &[u8; 64]) -> KemKeypair {
        let (dk, _) = MlKem768::from_seed(&(*seed).into());
        KemKeypair { dk }
    }

    /// The encapsulation (public) key to hand to the sealer.
    pub fn public_key(&self) -> [u8; KEM_PUBLIC_LEN] {
        let ek = self.dk.encapsulation_key().to_bytes();
        let mut out = [0u8; KEM_PUBLIC_LEN];
        out.copy_from_slice(&ek);
        out
    }

    /// The sealing key the sealer derived, recovered from its ciphertext.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<SealKey, SealError> {
        let shared = self.dk.decapsulate_slice(ciphertext).map_err(|_| SealError::BadKem)?;
        Ok(derive_key(&shared, KEM_LABEL))
    }
}

/// The sealer's side: encapsulates the 32 secret random bytes `m` to
/// `public_key`, returning the ciphertext for the verifier and the derived
/// sealing key. `m` must be fresh, uniform randomness.
pub fn kem_encapsulate(public_key: &[u8], m: &[u8; 32]) -> Result<([u8; KEM_CIPHERTEXT_LEN], SealKey), SealError> {
    let ek = ml_kem::ml_kem_768::EncapsulationKey::new_from_slice(public_key).map_err(|_| SealError::BadKem)?;
    let (ct, shared) = ek.encapsulate_deterministic(&(*m).into());
    let mut out = [0u8; KEM_CIPHERTEXT_LEN];
    out.copy_from_slice(&ct);
    Ok((out, derive_key(&shared, KEM_LABEL)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            kind: 2,
            object: 7,
            generation: 3,
            rights: 0x1f,
            label: 0x2_0000,
            badge: 99,
            key_id: 0,
            nonce: 42,
            node: 5,
            node_generation: 9,
        }
    }

    #[test]
    fn seal_round_trip() {
        let key = SealKey([7; 32]);
        let t = seal(&key, &payload());
        assert_eq!(unseal(&key, &t.0), Ok(payload()));
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let key = SealKey([7; 32]);
        let t = seal(&key, &payload());
        for i in 0..TOKEN_LEN * 8 {
            let mut b = t.0;
            b[i / 8] ^= 1 << (i % 8);
            assert_eq!(unseal(&key, &b), Err(SealError::BadMac), "bit {i}");
        }
    }

    #[test]
    fn wrong_key_and_length_are_refused() {
        let t = seal(&SealKey([7; 32]), &payload());
        assert_eq!(unseal(&SealKey([8; 32]), &t.0), Err(SealError::BadMac));
        assert_eq!(unseal(&SealKey([7; 32]), &t.0[..TOKEN_LEN - 1]), Err(SealError::BadLength));
        assert_eq!(unseal(&SealKey([7; 32]), &[0; TOKEN_LEN]), Err(SealError::BadMac));
    }

    #[test]
    fn forged_payload_with_guessed_mac_is_refused() {
        // An attacker who raises the rights of a genuine token cannot fix
        // the MAC without the key.
        let key = SealKey([1; 32]);
        let mut forged = payload();
        forged.rights = 0x1f;
        forged.object = 8;
        let mut t = seal(&SealKey([2; 32]), &forged).0;
        assert_eq!(unseal(&key, &t), Err(SealError::BadMac));
        t[PAYLOAD_LEN..].copy_from_slice(&seal(&key, &payload()).0[PAYLOAD_LEN..]);
        assert_eq!(unseal(&key, &t), Err(SealError::BadMac));
    }

    #[test]
    fn ml_kem_establishes_a_shared_sealing_key() {
        // The verifier publishes a public key; the sealer, sharing no
        // secret with it, derives a key and seals; the verifier recovers
        // the same key from the ciphertext and accepts the token.
        let verifier = KemKeypair::from_seed(&[0x5a; 64]);
        let (ct, sealer_key) = kem_encapsulate(&verifier.public_key(), &[0x17; 32]).unwrap();
        let token = seal(&sealer_key, &payload());
        let verifier_key = verifier.decapsulate(&ct).unwrap();
        assert_eq!(verifier_key, sealer_key);
        assert_eq!(unseal(&verifier_key, &token.0), Ok(payload()));

        // A third party with another key pair gets a different key.
        let other = KemKeypair::from_seed(&[0x33; 64]);
        let other_key = other.decapsulate(&ct).unwrap();
        assert_ne!(other_key, sealer_key);
        assert_eq!(unseal(&other_key, &token.0), Err(SealError::BadMac));

        // Fresh randomness gives a fresh key.
        let (_, second) = kem_encapsulate(&verifier.public_key(), &[0x18; 32]).unwrap();
        assert_ne!(second, sealer_key);
    }

    #[test]
    fn malformed_kem_inputs_are_errors() {
        let verifier = KemKeypair::from_seed(&[1; 64]);
        assert_eq!(kem_encapsulate(&[0u8; 10], &[0; 32]).unwrap_err(), SealError::BadKem);
        assert_eq!(verifier.decapsulate(&[0u8; 5]).unwrap_err(), SealError::BadKem);
        // A public key whose coefficients are out of range fails the
        // FIPS 203 modulus check.
        assert_eq!(kem_encapsulate(&[0xff; KEM_PUBLIC_LEN], &[0; 32]).unwrap_err(), SealError::BadKem);
    }
}
