//! The private key a backend shares with its game servers, and the operating system's
//! randomness that makes keys, token nonces and per-connection keys.

use std::fmt;
use std::io;

/// Bytes of a [`PrivateKey`] (a ChaCha20 key).
///
/// ```
/// assert_eq!(gudp::secure::KEY_LEN, 32);
/// ```
pub const KEY_LEN: usize = 32;

/// Fills `out` from the operating system's cryptographically secure generator.
pub(crate) fn random_bytes(out: &mut [u8]) -> io::Result<()> {
    getrandom::getrandom(out).map_err(|e| io::Error::other(format!("OS randomness: {e}")))
}

/// The 32-byte key that seals the private part of every connect token: the backend that
/// mints tokens and every game server that accepts them hold the same key, and nobody else
/// does. It never appears in `Debug` output.
///
/// A key file holds the key as 64 hexadecimal digits (an optional trailing newline is
/// allowed), the format [`to_hex`](Self::to_hex) writes and `gudp keygen` creates.
///
/// ```
/// use gudp::secure::PrivateKey;
/// let key = PrivateKey::generate().unwrap();
/// let text = key.to_hex();
/// assert_eq!(text.len(), 64);
/// assert_eq!(PrivateKey::from_hex(&text).unwrap(), key);
/// assert_eq!(format!("{key:?}"), "PrivateKey(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKey([u8; KEY_LEN]);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

impl PrivateKey {
    /// A new key from the operating system's randomness.
    ///
    /// # Errors
    ///
    /// If the operating system has no randomness to give (an error, never a weak key).
    ///
    /// ```
    /// use gudp::secure::PrivateKey;
    /// assert_ne!(PrivateKey::generate().unwrap(), PrivateKey::generate().unwrap());
    /// ```
    pub fn generate() -> io::Result<Self> {
        let mut key = [0u8; KEY_LEN];
        random_bytes(&mut key)?;
        Ok(Self(key))
    }

    /// A key from its 32 bytes (for a backend that keeps keys its own way, and for tests).
    ///
    /// ```
    /// use gudp::secure::PrivateKey;
    /// let key = PrivateKey::from_bytes([7; 32]);
    /// assert_eq!(key.as_bytes(), &[7; 32]);
    /// ```
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    ///
    /// ```
    /// use gudp::secure::PrivateKey;
    /// assert_eq!(PrivateKey::from_bytes([1; 32]).as_bytes().len(), 32);
    /// ```
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as 64 lowercase hexadecimal digits: a key file's contents.
    ///
    /// ```
    /// use gudp::secure::PrivateKey;
    /// assert!(PrivateKey::from_bytes([0xab; 32]).to_hex().starts_with("abab"));
    /// ```
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses a key file's contents: 64 hexadecimal digits, surrounding whitespace ignored.
    ///
    /// # Errors
    ///
    /// `InvalidData` naming what is wrong (length or a non-hex character).
    ///
    /// ```
    /// use gudp::secure::PrivateKey;
    /// let text = format!("{}\n", "0f".repeat(32));
    /// assert_eq!(PrivateKey::from_hex(&text).unwrap().as_bytes(), &[0x0f; 32]);
    /// assert!(PrivateKey::from_hex("0f0f").is_err());
    /// assert!(PrivateKey::from_hex(&"zz".repeat(32)).is_err());
    /// ```
    pub fn from_hex(text: &str) -> io::Result<Self> {
        let text = text.trim();
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if text.len() != 2 * KEY_LEN || !text.is_ascii() {
            return Err(invalid(format!(
                "a key is {} hexadecimal digits, got {} characters",
                2 * KEY_LEN,
                text.chars().count()
            )));
        }
        let mut key = [0u8; KEY_LEN];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| invalid(format!("a key is hexadecimal: bad digit at {}", 2 * i)))?;
        }
        Ok(Self(key))
    }
}
