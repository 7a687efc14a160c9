//! Packet layouts: encoding into a caller's buffer and borrowing decode.
//!
//! Every integer is big-endian (network byte order). Every datagram starts with the 32-bit
//! protocol id and a one-byte packet type. Connected packets carry a 16-byte MAC in their
//! header, which the codec reads and writes but does not interpret:
//! [`protection`](super::protection) computes and checks it. `docs/protocol.md` is the normative description;
//! the unit tests below check its hex test vectors.
//!
//! Encoding never allocates; decoding borrows the payload from the datagram and returns a
//! [`DecodeError`] for every malformed input, never panicking.
//!
//! ```
//! use gudp::protocol::wire::{decode, DenyReason, WirePacket, DEFAULT_PROTOCOL_ID};
//! let mut buf = [0u8; 64];
//! let denied = WirePacket::Denied { nonce: 42, reason: DenyReason::Full };
//! let n = denied.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
//! assert_eq!(decode(DEFAULT_PROTOCOL_ID, &buf[..n]), Ok(denied));
//! ```

use core::fmt;

use super::secure::hello;
use super::secure::SecureHello;

/// Default protocol id: ASCII `"GUD"` followed by wire version 2 (version 1 had no MAC).
///
/// ```
/// use gudp::protocol::{wire::DEFAULT_PROTOCOL_ID, Config};
/// assert_eq!(&DEFAULT_PROTOCOL_ID.to_be_bytes(), b"GUD\x02");
/// assert_eq!(Config::default().protocol_id, DEFAULT_PROTOCOL_ID);
/// ```
pub const DEFAULT_PROTOCOL_ID: u32 = 0x4755_4402;
/// Bytes shared by every packet: protocol id (4) and packet type (1).
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// WirePacket::Accept { nonce: 1 }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(peek_type(DEFAULT_PROTOCOL_ID, &buf[..PREFIX_LEN]), Ok(PacketType::Accept));
/// let too_short = decode(DEFAULT_PROTOCOL_ID, &buf[..PREFIX_LEN - 1]);
/// assert_eq!(too_short, Err(DecodeError::TooShort { len: 4 }));
/// ```
pub const PREFIX_LEN: usize = 5;
/// Size of a connection request and a challenge response: both are zero-padded to this.
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let request = WirePacket::ConnectionRequest { nonce: 7, fingerprint: 0 };
/// assert_eq!(request.encode(DEFAULT_PROTOCOL_ID, &mut buf), Ok(HANDSHAKE_PADDED_LEN));
/// assert!(buf[21..HANDSHAKE_PADDED_LEN].iter().all(|&b| b == 0)); // zero padding
/// ```
pub const HANDSHAKE_PADDED_LEN: usize = 1200;
/// Bytes of a challenge token (a SipHash-2-4 128-bit MAC).
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let challenge = WirePacket::Challenge { nonce: 1, timestamp: 2, token: [9; TOKEN_LEN] };
/// let n = challenge.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(&buf[n - TOKEN_LEN..n], &[9; TOKEN_LEN]); // the token ends the packet
/// ```
pub const TOKEN_LEN: usize = 16;
/// Size of a challenge packet.
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let challenge = WirePacket::Challenge { nonce: 1, timestamp: 2, token: [0; TOKEN_LEN] };
/// assert_eq!(challenge.encode(DEFAULT_PROTOCOL_ID, &mut buf), Ok(CHALLENGE_LEN));
/// assert_eq!(CHALLENGE_LEN, 37);
/// ```
pub const CHALLENGE_LEN: usize = PREFIX_LEN + 8 + 8 + TOKEN_LEN;
/// Size of an accept packet.
///
/// ```
/// # use gudp::protocol::wire::*;
/// assert_eq!(WirePacket::Accept { nonce: 1 }.encoded_len(), NONCE_PACKET_LEN);
/// assert_eq!(NONCE_PACKET_LEN, 13);
/// ```
pub const NONCE_PACKET_LEN: usize = PREFIX_LEN + 8;
/// Size of a denied packet: an accept's and the reason byte (still far smaller than the
/// 1,200-byte request it answers).
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let denied = WirePacket::Denied { nonce: 1, reason: DenyReason::ChannelMismatch };
/// assert_eq!(denied.encode(DEFAULT_PROTOCOL_ID, &mut buf), Ok(DENIED_LEN));
/// assert_eq!(DENIED_LEN, 14);
/// ```
pub const DENIED_LEN: usize = NONCE_PACKET_LEN + 1;
/// Offset of the message-layer fingerprint in a challenge response: the first 8 bytes of
/// what was its zero padding (a request carries it at 13, right after the nonce).
///
/// ```
/// # use gudp::protocol::wire::*;
/// assert_eq!(RESPONSE_FINGERPRINT_OFFSET, CHALLENGE_LEN);
/// ```
pub const RESPONSE_FINGERPRINT_OFFSET: usize = CHALLENGE_LEN;

/// Why a server denied a connection: the byte after the nonce of a denied packet.
///
/// ```
/// use gudp::protocol::wire::DenyReason;
/// assert_eq!(DenyReason::ChannelMismatch as u8, 1);
/// assert_eq!(DenyReason::from_byte(0), Some(DenyReason::Full));
/// assert_eq!(DenyReason::from_byte(9), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// The server holds its maximum number of connections.
    Full = 0,
    /// The client's message-layer fingerprint (0 for packet mode) is not the server's: the
    /// two ends configured different channels (or one is in packet mode).
    ChannelMismatch = 1,
}

impl DenyReason {
    /// The reason a byte encodes, if any.
    ///
    /// ```
    /// use gudp::protocol::wire::DenyReason;
    /// assert_eq!(DenyReason::from_byte(1), Some(DenyReason::ChannelMismatch));
    /// ```
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Full),
            1 => Some(Self::ChannelMismatch),
            _ => None,
        }
    }
}
/// Size of a secure-mode accept: an accept and its 16-byte tag.
///
/// ```
/// # use gudp::protocol::wire::*;
/// let accept = WirePacket::SecureAccept { nonce: 1, tag: [7; MAC_LEN] };
/// assert_eq!(accept.encoded_len(), SECURE_ACCEPT_LEN);
/// assert_eq!(SECURE_ACCEPT_LEN, 29);
/// ```
pub const SECURE_ACCEPT_LEN: usize = NONCE_PACKET_LEN + MAC_LEN;
/// Offset of the MAC (the packet's authentication tag) in a connected header: it follows
/// the prefix, flags, sequence, ack, ack bits and ack delay.
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let header = ConnectedHeader { sequence: 1, ack: None, mac: [0xee; MAC_LEN] };
/// let n = WirePacket::Keepalive { header }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(&buf[MAC_OFFSET..n], &[0xee; MAC_LEN]);
/// assert_eq!(MAC_OFFSET, 16);
/// ```
pub const MAC_OFFSET: usize = PREFIX_LEN + 1 + 2 + 2 + 4 + 2;
/// Bytes of the MAC every connected packet carries (a SipHash-2-4-128 tag,
/// [`protection`](super::protection)).
///
/// ```
/// # use gudp::protocol::wire::*;
/// assert_eq!(MAC_LEN, 16);
/// assert_eq!(MAC_OFFSET + MAC_LEN, CONNECTED_HEADER_LEN); // the MAC ends the header
/// ```
pub const MAC_LEN: usize = 16;
/// Bytes of the header every connected packet carries (prefix, flags, seq, ack, ack bits,
/// ack delay, MAC): all of a connected packet's overhead.
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let header = ConnectedHeader::new(0, None);
/// assert_eq!(WirePacket::Keepalive { header }.encoded_len(), CONNECTED_HEADER_LEN);
/// assert_eq!(WirePacket::Payload { header, payload: b"abc" }.encoded_len(), CONNECTED_HEADER_LEN + 3);
/// assert_eq!(CONNECTED_HEADER_LEN, 32);
/// ```
pub const CONNECTED_HEADER_LEN: usize = MAC_OFFSET + MAC_LEN;
/// Unit of the `ack_delay` field, in microseconds.
///
/// ```
/// use gudp::protocol::wire::{AckFields, ACK_DELAY_UNIT_MICROS};
/// use std::time::Duration;
/// let held = Duration::from_millis(12); // the ack waited 12 ms for a packet to ride on
/// let ack_delay = (held.as_micros() as u64 / ACK_DELAY_UNIT_MICROS) as u16;
/// let fields = AckFields { ack: 5, ack_bits: 0, ack_delay };
/// assert_eq!(fields.ack_delay, 120);
/// ```
pub const ACK_DELAY_UNIT_MICROS: u64 = 100;
/// Size of a disconnect packet (connected header and the 64-bit session).
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let header = ConnectedHeader::new(9, None);
/// let disconnect = WirePacket::Disconnect { header, session: 42 };
/// assert_eq!(disconnect.encode(DEFAULT_PROTOCOL_ID, &mut buf), Ok(DISCONNECT_LEN));
/// assert_eq!(DISCONNECT_LEN, CONNECTED_HEADER_LEN + 8);
/// ```
pub const DISCONNECT_LEN: usize = CONNECTED_HEADER_LEN + 8;
/// Flags bit: the `ack`, `ack_bits` and `ack_delay` fields are meaningful.
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let ack = Some(AckFields { ack: 3, ack_bits: 0, ack_delay: 0 });
/// let header = ConnectedHeader::new(1, ack);
/// WirePacket::Ack { header }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(buf[5], FLAG_HAS_ACK); // the flags byte follows the prefix
/// let header = ConnectedHeader::new(2, None);
/// WirePacket::Keepalive { header }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(buf[5], 0);
/// ```
pub const FLAG_HAS_ACK: u8 = 0x01;

/// The packet type byte (offset 4 of every datagram).
///
/// ```
/// use gudp::protocol::wire::{peek_type, PacketType, DEFAULT_PROTOCOL_ID};
/// assert_eq!(PacketType::Keepalive as u8, 0x11);
/// let datagram = [0x47, 0x55, 0x44, 0x02, 0x11];
/// assert_eq!(peek_type(DEFAULT_PROTOCOL_ID, &datagram), Ok(PacketType::Keepalive));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Client → server: asks for a challenge. Padded to [`HANDSHAKE_PADDED_LEN`].
    ConnectionRequest = 0x01,
    /// Server → client: carries a stateless token.
    Challenge = 0x02,
    /// Client → server: echoes the token. Padded to [`HANDSHAKE_PADDED_LEN`].
    ChallengeResponse = 0x03,
    /// Server → client: the connection exists.
    Accept = 0x04,
    /// Server → client: the server refuses (connection limit).
    Denied = 0x05,
    /// Client → server, secure mode: a connect token's request part. Padded to
    /// [`HANDSHAKE_PADDED_LEN`].
    SecureRequest = 0x06,
    /// Client → server, secure mode: the request part again, the challenge echoed, and a
    /// tag under the token's keys. Padded to [`HANDSHAKE_PADDED_LEN`].
    SecureResponse = 0x07,
    /// Server → client, secure mode: the connection exists, with a tag under the token's
    /// server → client key.
    SecureAccept = 0x08,
    /// Connected: an application payload.
    Payload = 0x10,
    /// Connected: keeps a silent connection alive; the peer acknowledges it.
    Keepalive = 0x11,
    /// Connected: carries acknowledgements only; the peer does not hurry to acknowledge it.
    Ack = 0x12,
    /// Connected: the sender closed the connection.
    Disconnect = 0x13,
}

impl PacketType {
    /// The type for a type byte, if it names one.
    ///
    /// ```
    /// use gudp::protocol::wire::PacketType;
    /// assert_eq!(PacketType::from_byte(0x04), Some(PacketType::Accept));
    /// assert_eq!(PacketType::from_byte(0xff), None);
    /// ```
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::ConnectionRequest,
            0x02 => Self::Challenge,
            0x03 => Self::ChallengeResponse,
            0x04 => Self::Accept,
            0x05 => Self::Denied,
            0x06 => Self::SecureRequest,
            0x07 => Self::SecureResponse,
            0x08 => Self::SecureAccept,
            0x10 => Self::Payload,
            0x11 => Self::Keepalive,
            0x12 => Self::Ack,
            0x13 => Self::Disconnect,
            _ => return None,
        })
    }
}

/// Acknowledgement fields: `ack` is the most recent sequence received; bit `n` of `ack_bits`
/// (least significant = bit 0) set means sequence `ack - 1 - n` (mod 65536) was received too.
///
/// ```
/// use gudp::protocol::wire::AckFields;
/// // Acknowledges 10, and with bits 0 and 2 also 9 and 7.
/// let fields = AckFields { ack: 10, ack_bits: 0b101, ack_delay: 0 };
/// let acked: Vec<u16> = (0..32)
///     .filter(|n| fields.ack_bits & (1 << n) != 0)
///     .map(|n| fields.ack - 1 - n)
///     .collect();
/// assert_eq!(acked, [9, 7]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckFields {
    /// Most recent sequence received from the peer.
    pub ack: u16,
    /// Bit `n` set: sequence `ack - 1 - n` was received.
    pub ack_bits: u32,
    /// How long the sender held `ack` before sending this packet, in units of
    /// [`ACK_DELAY_UNIT_MICROS`] (saturating at 65535). The receiver subtracts it from its RTT
    /// sample, so samples do not depend on when the peer happened to send.
    pub ack_delay: u16,
}

/// The header of every connected packet (payload, keepalive, ack, disconnect).
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let ack = Some(AckFields { ack: 10, ack_bits: 0b101, ack_delay: 3 });
/// let header = ConnectedHeader::new(2, ack);
/// let n = WirePacket::Ack { header }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(decode(DEFAULT_PROTOCOL_ID, &buf[..n]), Ok(WirePacket::Ack { header }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConnectedHeader {
    /// The sender's sequence number for this packet.
    pub sequence: u16,
    /// The sender's acknowledgements; `None` until it has received a connected packet.
    pub ack: Option<AckFields>,
    /// The packet's authentication tag, as the datagram carries it: opaque to the codec,
    /// written by [`PacketProtection::seal`](super::protection::PacketProtection::seal)
    /// over the encoded packet and checked by its `verify`.
    pub mac: [u8; MAC_LEN],
}

impl ConnectedHeader {
    /// A header with `sequence` and `ack` and a zero MAC, to be sealed once encoded.
    ///
    /// ```
    /// use gudp::protocol::wire::{ConnectedHeader, MAC_LEN};
    /// let header = ConnectedHeader::new(5, None);
    /// assert_eq!((header.sequence, header.ack, header.mac), (5, None, [0; MAC_LEN]));
    /// ```
    pub fn new(sequence: u16, ack: Option<AckFields>) -> Self {
        Self {
            sequence,
            ack,
            mac: [0; MAC_LEN],
        }
    }
}

/// A decoded datagram. `Payload` borrows its bytes from the datagram.
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let header = ConnectedHeader::new(1, None);
/// let packet = WirePacket::Payload { header, payload: b"hello" };
/// let n = packet.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// match decode(DEFAULT_PROTOCOL_ID, &buf[..n]).unwrap() {
///     WirePacket::Payload { payload, .. } => assert_eq!(payload, b"hello"), // borrowed from buf
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WirePacket<'a> {
    /// Client → server, padded to [`HANDSHAKE_PADDED_LEN`] with zeros.
    ConnectionRequest {
        /// Random per-attempt value chosen by the client.
        nonce: u64,
        /// The client's `MessageConfig::fingerprint`, 0 in packet mode (bytes 13..21).
        fingerprint: u64,
    },
    /// Server → client.
    Challenge {
        /// The request's nonce, echoed.
        nonce: u64,
        /// Server time of issue, milliseconds since the server endpoint's epoch.
        timestamp: u64,
        /// MAC over protocol id, client address, timestamp and nonce.
        token: [u8; TOKEN_LEN],
    },
    /// Client → server, padded to [`HANDSHAKE_PADDED_LEN`] with zeros.
    ChallengeResponse {
        /// The request's nonce.
        nonce: u64,
        /// The challenge's timestamp, echoed.
        timestamp: u64,
        /// The challenge's token, echoed.
        token: [u8; TOKEN_LEN],
        /// The client's `MessageConfig::fingerprint`, 0 in packet mode (bytes 37..45).
        fingerprint: u64,
    },
    /// Server → client: state was created for this nonce.
    Accept {
        /// The request's nonce, echoed.
        nonce: u64,
    },
    /// Server → client: the server will not accept this connection.
    Denied {
        /// The request's nonce, echoed.
        nonce: u64,
        /// Why (byte 13).
        reason: DenyReason,
    },
    /// Client → server, secure mode, padded to [`HANDSHAKE_PADDED_LEN`] with zeros.
    SecureRequest(SecureHello<'a>),
    /// Client → server, secure mode, padded to [`HANDSHAKE_PADDED_LEN`] with zeros.
    SecureResponse {
        /// The request's fields, again.
        hello: SecureHello<'a>,
        /// The challenge's timestamp, echoed.
        timestamp: u64,
        /// The challenge's token, echoed.
        token: [u8; TOKEN_LEN],
        /// The tag over every byte before it, under the token's client → server key.
        tag: [u8; MAC_LEN],
    },
    /// Server → client, secure mode: state was created for this nonce.
    SecureAccept {
        /// The request's nonce, echoed.
        nonce: u64,
        /// The tag over the 13 bytes before it, under the token's server → client key.
        tag: [u8; MAC_LEN],
    },
    /// Connected: an application payload (the rest of the datagram).
    Payload {
        /// Sequence and acks.
        header: ConnectedHeader,
        /// Application bytes, borrowed from the datagram.
        payload: &'a [u8],
    },
    /// Connected: ack-eliciting packet sent when the application is silent.
    Keepalive {
        /// Sequence and acks.
        header: ConnectedHeader,
    },
    /// Connected: acknowledgements only.
    Ack {
        /// Sequence and acks.
        header: ConnectedHeader,
    },
    /// Connected: the sender closed the connection.
    Disconnect {
        /// Sequence and acks.
        header: ConnectedHeader,
        /// The connection's session value (the client's request nonce).
        session: u64,
    },
}

/// A field that has a single valid encoding was encoded otherwise.
///
/// ```
/// use gudp::protocol::wire::{decode, DecodeError, NonCanonical, DEFAULT_PROTOCOL_ID};
/// // A keepalive whose flags byte sets a reserved bit (0x02).
/// let mut d = [0u8; 32];
/// d[..8].copy_from_slice(&[0x47, 0x55, 0x44, 0x02, 0x11, 0x02, 0, 7]);
/// let error = DecodeError::NonCanonical(NonCanonical::ReservedFlags);
/// assert_eq!(decode(DEFAULT_PROTOCOL_ID, &d), Err(error));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonCanonical {
    /// Reserved flag bits (all but bit 0) must be zero.
    ReservedFlags,
    /// Without the has-ack flag, `ack`, `ack_bits` and `ack_delay` must be zero.
    AckWithoutFlag,
    /// Handshake padding must be zero bytes.
    Padding,
    /// A denied packet's reason byte must name a [`DenyReason`].
    DenyReason,
}

/// Why a datagram could not be decoded.
///
/// ```
/// use gudp::protocol::wire::{decode, DecodeError, PacketType, DEFAULT_PROTOCOL_ID};
/// let id = DEFAULT_PROTOCOL_ID;
/// let unknown = DecodeError::UnknownType { byte: 0x7f };
/// assert_eq!(decode(id, &[0x47, 0x55, 0x44, 0x02, 0x7f]), Err(unknown));
/// let bad = DecodeError::BadLength { packet_type: PacketType::Accept, len: 5 };
/// assert_eq!(decode(id, &[0x47, 0x55, 0x44, 0x02, 0x04]), Err(bad));
/// let wrong = DecodeError::WrongProtocolId { found: id };
/// assert_eq!(decode(7, &[0x47, 0x55, 0x44, 0x02, 0x04]), Err(wrong));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the 5-byte prefix.
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The protocol id is not ours.
    WrongProtocolId {
        /// The id found.
        found: u32,
    },
    /// The type byte names no packet type.
    UnknownType {
        /// The byte found.
        byte: u8,
    },
    /// The datagram's length does not fit the packet type.
    BadLength {
        /// The decoded type.
        packet_type: PacketType,
        /// Bytes received.
        len: usize,
    },
    /// A field had a non-canonical encoding.
    NonCanonical(NonCanonical),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "datagram of {len} bytes is shorter than a header"),
            Self::WrongProtocolId { found } => write!(f, "wrong protocol id {found:#010x}"),
            Self::UnknownType { byte } => write!(f, "unknown packet type {byte:#04x}"),
            Self::BadLength { packet_type, len } => {
                write!(f, "{len} bytes is not a valid length for {packet_type:?}")
            }
            Self::NonCanonical(what) => write!(f, "non-canonical encoding: {what:?}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The output buffer cannot hold the packet.
///
/// ```
/// use gudp::protocol::wire::{BufferTooSmall, WirePacket, DEFAULT_PROTOCOL_ID};
/// let mut small = [0u8; 4];
/// let result = WirePacket::Accept { nonce: 1 }.encode(DEFAULT_PROTOCOL_ID, &mut small);
/// assert_eq!(result, Err(BufferTooSmall { needed: 13 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferTooSmall {
    /// Bytes the packet needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output buffer too small: {} bytes needed", self.needed)
    }
}

impl std::error::Error for BufferTooSmall {}

fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}
fn read_token(b: &[u8], at: usize) -> [u8; TOKEN_LEN] {
    let mut t = [0u8; TOKEN_LEN];
    t.copy_from_slice(&b[at..at + TOKEN_LEN]);
    t
}

/// Reads the packet type of a datagram after checking its prefix.
///
/// ```
/// # use gudp::protocol::wire::*;
/// # let mut buf = [0u8; 1500];
/// let n = WirePacket::Denied { nonce: 5, reason: DenyReason::Full }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
/// assert_eq!(peek_type(DEFAULT_PROTOCOL_ID, &buf[..n]), Ok(PacketType::Denied));
/// let other = DecodeError::WrongProtocolId { found: DEFAULT_PROTOCOL_ID };
/// assert_eq!(peek_type(0x1234_5678, &buf[..n]), Err(other));
/// ```
pub fn peek_type(protocol_id: u32, datagram: &[u8]) -> Result<PacketType, DecodeError> {
    if datagram.len() < PREFIX_LEN {
        return Err(DecodeError::TooShort {
            len: datagram.len(),
        });
    }
    let found = read_u32(datagram, 0);
    if found != protocol_id {
        return Err(DecodeError::WrongProtocolId { found });
    }
    PacketType::from_byte(datagram[4]).ok_or(DecodeError::UnknownType { byte: datagram[4] })
}

fn decode_header(d: &[u8]) -> Result<ConnectedHeader, DecodeError> {
    let flags = d[5];
    if flags & !FLAG_HAS_ACK != 0 {
        return Err(DecodeError::NonCanonical(NonCanonical::ReservedFlags));
    }
    let sequence = read_u16(d, 6);
    let ack = read_u16(d, 8);
    let ack_bits = read_u32(d, 10);
    let ack_delay = read_u16(d, 14);
    let ack = if flags & FLAG_HAS_ACK != 0 {
        Some(AckFields {
            ack,
            ack_bits,
            ack_delay,
        })
    } else if ack != 0 || ack_bits != 0 || ack_delay != 0 {
        return Err(DecodeError::NonCanonical(NonCanonical::AckWithoutFlag));
    } else {
        None
    };
    let mut mac = [0u8; MAC_LEN];
    mac.copy_from_slice(&d[MAC_OFFSET..CONNECTED_HEADER_LEN]);
    Ok(ConnectedHeader { sequence, ack, mac })
}

/// Decodes one datagram for the given protocol id.
///
/// ```
/// use gudp::protocol::wire::{decode, WirePacket, DEFAULT_PROTOCOL_ID};
/// let mut d = [0u8; 32]; // a keepalive: 16 header bytes, then the 16-byte MAC field
/// d[..8].copy_from_slice(&[0x47, 0x55, 0x44, 0x02, 0x11, 0x00, 0x00, 0x07]);
/// match decode(DEFAULT_PROTOCOL_ID, &d).unwrap() {
///     WirePacket::Keepalive { header } => assert_eq!(header.sequence, 7),
///     other => panic!("{other:?}"),
/// }
/// ```
pub fn decode(protocol_id: u32, datagram: &[u8]) -> Result<WirePacket<'_>, DecodeError> {
    let packet_type = peek_type(protocol_id, datagram)?;
    let d = datagram;
    let len = d.len();
    let bad_length = Err(DecodeError::BadLength { packet_type, len });
    let zero_padding = |from: usize| {
        if d[from..].iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(DecodeError::NonCanonical(NonCanonical::Padding))
        }
    };
    match packet_type {
        PacketType::ConnectionRequest => {
            if len != HANDSHAKE_PADDED_LEN {
                return bad_length;
            }
            zero_padding(PREFIX_LEN + 16)?;
            Ok(WirePacket::ConnectionRequest {
                nonce: read_u64(d, 5),
                fingerprint: read_u64(d, 13),
            })
        }
        PacketType::Challenge | PacketType::ChallengeResponse => {
            let expected = if packet_type == PacketType::Challenge {
                CHALLENGE_LEN
            } else {
                HANDSHAKE_PADDED_LEN
            };
            if len != expected {
                return bad_length;
            }
            let (nonce, timestamp, token) = (read_u64(d, 5), read_u64(d, 13), read_token(d, 21));
            Ok(if packet_type == PacketType::Challenge {
                WirePacket::Challenge {
                    nonce,
                    timestamp,
                    token,
                }
            } else {
                zero_padding(RESPONSE_FINGERPRINT_OFFSET + 8)?;
                WirePacket::ChallengeResponse {
                    nonce,
                    timestamp,
                    token,
                    fingerprint: read_u64(d, RESPONSE_FINGERPRINT_OFFSET),
                }
            })
        }
        PacketType::Accept => {
            if len != NONCE_PACKET_LEN {
                return bad_length;
            }
            Ok(WirePacket::Accept {
                nonce: read_u64(d, 5),
            })
        }
        PacketType::Denied => {
            if len != DENIED_LEN {
                return bad_length;
            }
            let reason = DenyReason::from_byte(d[NONCE_PACKET_LEN])
                .ok_or(DecodeError::NonCanonical(NonCanonical::DenyReason))?;
            Ok(WirePacket::Denied {
                nonce: read_u64(d, 5),
                reason,
            })
        }
        PacketType::SecureRequest | PacketType::SecureResponse => {
            if len != HANDSHAKE_PADDED_LEN {
                return bad_length;
            }
            Ok(if packet_type == PacketType::SecureRequest {
                WirePacket::SecureRequest(SecureHello::decode(d, hello::HELLO_END)?)
            } else {
                let (hello, timestamp, token, tag) = hello::decode_response(d)?;
                WirePacket::SecureResponse {
                    hello,
                    timestamp,
                    token,
                    tag,
                }
            })
        }
        PacketType::SecureAccept => {
            if len != SECURE_ACCEPT_LEN {
                return bad_length;
            }
            Ok(WirePacket::SecureAccept {
                nonce: read_u64(d, 5),
                tag: read_token(d, NONCE_PACKET_LEN),
            })
        }
        PacketType::Payload => {
            if len < CONNECTED_HEADER_LEN {
                return bad_length;
            }
            let header = decode_header(d)?;
            Ok(WirePacket::Payload {
                header,
                payload: &d[CONNECTED_HEADER_LEN..],
            })
        }
        PacketType::Keepalive | PacketType::Ack => {
            if len != CONNECTED_HEADER_LEN {
                return bad_length;
            }
            let header = decode_header(d)?;
            Ok(if packet_type == PacketType::Keepalive {
                WirePacket::Keepalive { header }
            } else {
                WirePacket::Ack { header }
            })
        }
        PacketType::Disconnect => {
            if len != DISCONNECT_LEN {
                return bad_length;
            }
            let header = decode_header(d)?;
            Ok(WirePacket::Disconnect {
                header,
                session: read_u64(d, CONNECTED_HEADER_LEN),
            })
        }
    }
}

impl WirePacket<'_> {
    /// The packet's type.
    ///
    /// ```
    /// use gudp::protocol::wire::{DenyReason, WirePacket, PacketType};
    /// assert_eq!(WirePacket::Denied { nonce: 0, reason: DenyReason::Full }.packet_type(), PacketType::Denied);
    /// assert_eq!(WirePacket::Denied { nonce: 0, reason: DenyReason::Full }.packet_type() as u8, 0x05);
    /// ```
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::ConnectionRequest { .. } => PacketType::ConnectionRequest,
            Self::Challenge { .. } => PacketType::Challenge,
            Self::ChallengeResponse { .. } => PacketType::ChallengeResponse,
            Self::Accept { .. } => PacketType::Accept,
            Self::Denied { .. } => PacketType::Denied,
            Self::SecureRequest(_) => PacketType::SecureRequest,
            Self::SecureResponse { .. } => PacketType::SecureResponse,
            Self::SecureAccept { .. } => PacketType::SecureAccept,
            Self::Payload { .. } => PacketType::Payload,
            Self::Keepalive { .. } => PacketType::Keepalive,
            Self::Ack { .. } => PacketType::Ack,
            Self::Disconnect { .. } => PacketType::Disconnect,
        }
    }

    /// Bytes [`encode`](Self::encode) writes.
    ///
    /// ```
    /// use gudp::protocol::wire::{ConnectedHeader, WirePacket, DEFAULT_PROTOCOL_ID};
    /// let header = ConnectedHeader::new(0, None);
    /// let packet = WirePacket::Payload { header, payload: b"hey" };
    /// let mut out = vec![0u8; packet.encoded_len()]; // exactly large enough
    /// assert_eq!(packet.encode(DEFAULT_PROTOCOL_ID, &mut out), Ok(35));
    /// ```
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::ConnectionRequest { .. }
            | Self::ChallengeResponse { .. }
            | Self::SecureRequest(_)
            | Self::SecureResponse { .. } => HANDSHAKE_PADDED_LEN,
            Self::Challenge { .. } => CHALLENGE_LEN,
            Self::Accept { .. } => NONCE_PACKET_LEN,
            Self::Denied { .. } => DENIED_LEN,
            Self::SecureAccept { .. } => SECURE_ACCEPT_LEN,
            Self::Payload { payload, .. } => CONNECTED_HEADER_LEN + payload.len(),
            Self::Keepalive { .. } | Self::Ack { .. } => CONNECTED_HEADER_LEN,
            Self::Disconnect { .. } => DISCONNECT_LEN,
        }
    }

    /// Writes the packet at the start of `out` and returns its length. Allocates nothing.
    ///
    /// ```
    /// use gudp::protocol::wire::{WirePacket, DEFAULT_PROTOCOL_ID};
    /// let mut buf = [0u8; 32];
    /// let n = WirePacket::Accept { nonce: 1 }.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
    /// assert_eq!(&buf[..n], &[0x47, 0x55, 0x44, 0x02, 0x04, 0, 0, 0, 0, 0, 0, 0, 1]);
    /// ```
    pub fn encode(&self, protocol_id: u32, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let len = self.encoded_len();
        let Some(out) = out.get_mut(..len) else {
            return Err(BufferTooSmall { needed: len });
        };
        out[0..4].copy_from_slice(&protocol_id.to_be_bytes());
        out[4] = self.packet_type() as u8;
        match *self {
            Self::ConnectionRequest { nonce, fingerprint } => {
                out[5..13].copy_from_slice(&nonce.to_be_bytes());
                out[13..21].copy_from_slice(&fingerprint.to_be_bytes());
                out[21..].fill(0);
            }
            Self::Challenge {
                nonce,
                timestamp,
                token,
            } => encode_challenge(out, nonce, timestamp, token),
            Self::ChallengeResponse {
                nonce,
                timestamp,
                token,
                fingerprint,
            } => {
                encode_challenge(out, nonce, timestamp, token);
                let at = RESPONSE_FINGERPRINT_OFFSET;
                out[at..at + 8].copy_from_slice(&fingerprint.to_be_bytes());
                out[at + 8..].fill(0);
            }
            Self::Accept { nonce } => {
                out[5..13].copy_from_slice(&nonce.to_be_bytes());
            }
            Self::Denied { nonce, reason } => {
                out[5..13].copy_from_slice(&nonce.to_be_bytes());
                out[NONCE_PACKET_LEN] = reason as u8;
            }
            Self::SecureAccept { nonce, tag } => {
                out[5..13].copy_from_slice(&nonce.to_be_bytes());
                out[NONCE_PACKET_LEN..].copy_from_slice(&tag);
            }
            Self::SecureRequest(hello) => hello.encode(out),
            Self::SecureResponse {
                hello,
                timestamp,
                token,
                tag,
            } => hello::encode_response(&hello, timestamp, &token, &tag, out),
            Self::Payload { header, payload } => {
                encode_header(header, out);
                out[CONNECTED_HEADER_LEN..].copy_from_slice(payload);
            }
            Self::Keepalive { header } | Self::Ack { header } => encode_header(header, out),
            Self::Disconnect { header, session } => {
                encode_header(header, out);
                out[CONNECTED_HEADER_LEN..].copy_from_slice(&session.to_be_bytes());
            }
        }
        Ok(len)
    }
}

/// The nonce, timestamp and token a challenge and its response share.
fn encode_challenge(out: &mut [u8], nonce: u64, timestamp: u64, token: [u8; TOKEN_LEN]) {
    out[5..13].copy_from_slice(&nonce.to_be_bytes());
    out[13..21].copy_from_slice(&timestamp.to_be_bytes());
    out[21..CHALLENGE_LEN].copy_from_slice(&token);
    out[CHALLENGE_LEN..].fill(0);
}

fn encode_header(h: ConnectedHeader, out: &mut [u8]) {
    let (flags, ack) = match h.ack {
        Some(a) => (FLAG_HAS_ACK, a),
        None => (
            0,
            AckFields {
                ack: 0,
                ack_bits: 0,
                ack_delay: 0,
            },
        ),
    };
    out[5] = flags;
    out[6..8].copy_from_slice(&h.sequence.to_be_bytes());
    out[8..10].copy_from_slice(&ack.ack.to_be_bytes());
    out[10..14].copy_from_slice(&ack.ack_bits.to_be_bytes());
    out[14..16].copy_from_slice(&ack.ack_delay.to_be_bytes());
    out[MAC_OFFSET..CONNECTED_HEADER_LEN].copy_from_slice(&h.mac);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::from_hex as hex;

    fn check_vector(p: WirePacket<'_>, hex_bytes: &str) {
        let expected = hex(hex_bytes);
        let mut buf = [0xAAu8; 1300];
        let n = p.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
        assert_eq!(&buf[..n], &expected[..], "{p:?}");
        assert_eq!(decode(DEFAULT_PROTOCOL_ID, &expected), Ok(p));
    }

    /// The MAC field of the connected vectors: opaque to the codec (`protection.rs` computes
    /// real tags), so any 16 bytes do.
    const MAC: [u8; MAC_LEN] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    // The vectors below are the ones printed in docs/protocol.md, section "Test vectors".
    #[test]
    fn test_vectors_from_the_spec() {
        check_vector(
            WirePacket::Payload {
                header: ConnectedHeader {
                    sequence: 0x0102,
                    ack: Some(AckFields {
                        ack: 0x00ff,
                        ack_bits: 0x8000_0001,
                        ack_delay: 0x0032,
                    }),
                    mac: MAC,
                },
                payload: b"hi",
            },
            "47554402 10 01 0102 00ff 80000001 0032 000102030405060708090a0b0c0d0e0f 6869",
        );
        check_vector(
            WirePacket::Keepalive {
                header: ConnectedHeader {
                    sequence: 0,
                    ack: None,
                    mac: MAC,
                },
            },
            "47554402 11 00 0000 0000 00000000 0000 000102030405060708090a0b0c0d0e0f",
        );
        check_vector(
            WirePacket::Ack {
                header: ConnectedHeader {
                    sequence: 0xffff,
                    ack: Some(AckFields {
                        ack: 0x0005,
                        ack_bits: 0x0000_000b,
                        ack_delay: 0xffff,
                    }),
                    mac: MAC,
                },
            },
            "47554402 12 01 ffff 0005 0000000b ffff 000102030405060708090a0b0c0d0e0f",
        );
        check_vector(
            WirePacket::Disconnect {
                header: ConnectedHeader {
                    sequence: 9,
                    ack: None,
                    mac: MAC,
                },
                session: 0x0123_4567_89ab_cdef,
            },
            "47554402 13 00 0009 0000 00000000 0000 000102030405060708090a0b0c0d0e0f 0123456789abcdef",
        );
        check_vector(
            WirePacket::Challenge {
                nonce: 0x1122_3344_5566_7788,
                timestamp: 1500,
                token: [0xab; 16],
            },
            "47554402 02 1122334455667788 00000000000005dc abababababababababababababababab",
        );
        check_vector(
            WirePacket::Accept { nonce: 42 },
            "47554402 04 000000000000002a",
        );
        check_vector(
            WirePacket::Denied {
                nonce: 42,
                reason: DenyReason::Full,
            },
            "47554402 05 000000000000002a 00",
        );
        check_vector(
            WirePacket::Denied {
                nonce: 42,
                reason: DenyReason::ChannelMismatch,
            },
            "47554402 05 000000000000002a 01",
        );
        // The default `MessageConfig`'s fingerprint (docs/message-layer.md §3), and 0 for
        // packet mode.
        let default = crate::message::MessageConfig::default().fingerprint();
        assert_eq!(
            default, 0x1972_93a4_5292_56ff,
            "docs/protocol.md §8 names it"
        );
        for (fingerprint, hex_fingerprint) in [
            (0, "0000000000000000"),
            (0x1972_93a4_5292_56ff, "197293a4529256ff"),
        ] {
            let mut request = hex(&format!("47554402 01 0000000000000007 {hex_fingerprint}"));
            request.resize(HANDSHAKE_PADDED_LEN, 0);
            let mut buf = [0u8; HANDSHAKE_PADDED_LEN];
            let p = WirePacket::ConnectionRequest {
                nonce: 7,
                fingerprint,
            };
            let n = p.encode(DEFAULT_PROTOCOL_ID, &mut buf).unwrap();
            assert_eq!(&buf[..n], &request[..]);
            assert_eq!(decode(DEFAULT_PROTOCOL_ID, &request), Ok(p));
            let mut response = hex(&format!(
                "47554402 03 0000000000000007 00000000000005dc 000102030405060708090a0b0c0d0e0f {hex_fingerprint}"
            ));
            response.resize(HANDSHAKE_PADDED_LEN, 0);
            let token: [u8; 16] = core::array::from_fn(|i| i as u8);
            let p = WirePacket::ChallengeResponse {
                nonce: 7,
                timestamp: 1500,
                token,
                fingerprint,
            };
            assert_eq!(
                p.encode(DEFAULT_PROTOCOL_ID, &mut buf),
                Ok(HANDSHAKE_PADDED_LEN)
            );
            assert_eq!(&buf[..], &response[..]);
            assert_eq!(decode(DEFAULT_PROTOCOL_ID, &response), Ok(p));
        }
    }

    #[test]
    fn every_malformation_has_its_error() {
        let id = DEFAULT_PROTOCOL_ID;
        assert_eq!(
            decode(id, &[0x47, 0x55]),
            Err(DecodeError::TooShort { len: 2 })
        );
        assert_eq!(
            decode(id, &hex("47554401 11 00 0000 0000 00000000 0000")),
            Err(DecodeError::WrongProtocolId { found: 0x4755_4401 })
        );
        assert_eq!(
            decode(id, &hex("47554402 7f")),
            Err(DecodeError::UnknownType { byte: 0x7f })
        );
        assert_eq!(
            decode(
                id,
                &hex("47554402 11 00 0000 0000 00000000 0000 00000000000000000000000000000000 00")
            ),
            Err(DecodeError::BadLength {
                packet_type: PacketType::Keepalive,
                len: 33
            })
        );
        assert_eq!(
            decode(
                id,
                &hex("47554402 10 00 0000 0000 00000000 0000 000000000000000000000000000000")
            ),
            Err(DecodeError::BadLength {
                packet_type: PacketType::Payload,
                len: 31
            })
        );
        assert_eq!(
            decode(
                id,
                &hex("47554402 11 02 0000 0000 00000000 0000 00000000000000000000000000000000")
            ),
            Err(DecodeError::NonCanonical(NonCanonical::ReservedFlags))
        );
        assert_eq!(
            decode(
                id,
                &hex("47554402 11 00 0000 0001 00000000 0000 00000000000000000000000000000000")
            ),
            Err(DecodeError::NonCanonical(NonCanonical::AckWithoutFlag))
        );
        assert_eq!(
            decode(
                id,
                &hex("47554402 11 00 0000 0000 00000000 0001 00000000000000000000000000000000")
            ),
            Err(DecodeError::NonCanonical(NonCanonical::AckWithoutFlag))
        );
        let mut request = hex("47554402 01 0000000000000007");
        request.resize(HANDSHAKE_PADDED_LEN, 0);
        request[HANDSHAKE_PADDED_LEN - 1] = 1;
        assert_eq!(
            decode(id, &request),
            Err(DecodeError::NonCanonical(NonCanonical::Padding))
        );
        request.pop();
        assert_eq!(
            decode(id, &request),
            Err(DecodeError::BadLength {
                packet_type: PacketType::ConnectionRequest,
                len: 1199
            })
        );
        assert_eq!(
            decode(id, &hex("47554402 05 000000000000002a 02")),
            Err(DecodeError::NonCanonical(NonCanonical::DenyReason))
        );
        assert_eq!(
            decode(id, &hex("47554402 05 000000000000002a")),
            Err(DecodeError::BadLength {
                packet_type: PacketType::Denied,
                len: 13
            })
        );
    }

    #[test]
    fn encode_reports_the_size_it_needs() {
        let mut small = [0u8; 31];
        let p = WirePacket::Keepalive {
            header: ConnectedHeader::new(1, None),
        };
        assert_eq!(
            p.encode(DEFAULT_PROTOCOL_ID, &mut small),
            Err(BufferTooSmall { needed: 32 })
        );
    }
}
