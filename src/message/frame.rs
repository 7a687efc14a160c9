//! Wire framing of the message layer: a packet payload is a sequence of frames, each a whole
//! message or one fragment of a large one. All integers are big-endian.
//!
//! ```text
//! message frame:  | 00cccccc | id: u16 | len: u16   | data[len]                  |
//! fragment frame: | 01cccccc | id: u16 | total: u32 | index: u16 | data[derived] |
//! ack frame:      | 10cccccc | next: u16 | n: u8 | n blocks                        |
//! next message:   | 11cccccc | len: varint | data[len]                               |
//! ```
//!
//! `cccccc` is the channel id (0..=63). A fragment's data length is not sent: every fragment
//! but the last carries exactly `fragment_size` bytes (`max_payload - 9`), the last the rest
//! of `total`. An ack frame tells the sender of a reliable channel what the receiver holds,
//! where the packet layer's acks cannot (see [`AckBlock`]). A next-message frame is a whole
//! message whose id is one more than that of the message frame right before it, on the same
//! channel; its length is a LEB128 varint (2 bytes of header for a message under 128 bytes,
//! against 5). `docs/message-layer.md` is the
//! specification, with test vectors.
//!
//! ```
//! use gudp::message::frame::{decode, Frame};
//! let mut buf = [0u8; 64];
//! let n = Frame::Message { channel: 3, id: 0x0102, data: b"hi" }.encode(&mut buf).unwrap();
//! assert_eq!(&buf[..n], &[0x03, 0x01, 0x02, 0x00, 0x02, b'h', b'i']);
//! let frames: Vec<_> = decode(&buf[..n], 1191).collect();
//! assert_eq!(frames, vec![Ok(Frame::Message { channel: 3, id: 0x0102, data: &b"hi"[..] })]);
//! ```

use std::fmt;

/// Bytes before a message frame's data: type and channel, id, length.
///
/// ```
/// use gudp::message::frame::{Frame, MESSAGE_HEADER_LEN};
/// assert_eq!(Frame::Message { channel: 0, id: 0, data: b"" }.encoded_len(), MESSAGE_HEADER_LEN);
/// ```
pub const MESSAGE_HEADER_LEN: usize = 5;
/// Bytes before a fragment frame's data: type and channel, id, total length, index.
///
/// ```
/// use gudp::message::frame::FRAGMENT_HEADER_LEN;
/// use gudp::message::MessageConfig;
/// assert_eq!(MessageConfig::default().fragment_size(), 1200 - FRAGMENT_HEADER_LEN);
/// ```
pub const FRAGMENT_HEADER_LEN: usize = 9;
/// Channel ids fit in six bits.
///
/// ```
/// use gudp::message::frame::{Frame, FrameError, MAX_CHANNELS};
/// let f = Frame::Message { channel: MAX_CHANNELS as u8, id: 0, data: b"" };
/// assert_eq!(f.encode(&mut [0; 8]), Err(FrameError::NoSpace));
/// ```
pub const MAX_CHANNELS: usize = 64;

/// Bytes before an ack frame's blocks: type and channel, cumulative id, block count.
///
/// ```
/// use gudp::message::frame::{AckBlocks, Frame, ACK_HEADER_LEN};
/// let f = Frame::Ack { channel: 3, next: 9, blocks: AckBlocks::EMPTY };
/// assert_eq!(f.encoded_len(), ACK_HEADER_LEN);
/// ```
pub const ACK_HEADER_LEN: usize = 4;

const TYPE_MESSAGE: u8 = 0b00;
const TYPE_FRAGMENT: u8 = 0b01;
const TYPE_ACK: u8 = 0b10;
const TYPE_NEXT: u8 = 0b11;
const BLOCK_MESSAGES: u8 = 0;
const BLOCK_FRAGMENTS: u8 = 1;

/// One range an ack frame reports received, beyond its cumulative id.
///
/// ```
/// use gudp::message::frame::AckBlock;
/// let mut buf = [0u8; 8];
/// let b = AckBlock::Fragments { id: 7, start: 2, count: 3 };
/// assert_eq!(b.encode(&mut buf), Ok(7));
/// assert_eq!(&buf[..7], &[1, 0, 7, 0, 2, 0, 3]);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckBlock {
    /// Messages `id`, `id + 1`, ... (`count` of them, wrapping) are held whole.
    Messages {
        /// The first id of the run.
        id: u16,
        /// How many (at least 1).
        count: u16,
    },
    /// Fragments `start .. start + count` of message `id` are held.
    Fragments {
        /// The message.
        id: u16,
        /// The first fragment of the run.
        start: u16,
        /// How many (at least 1).
        count: u16,
    },
}

impl AckBlock {
    /// Bytes this block takes on the wire: 5 for a message run, 7 for a fragment run.
    ///
    /// ```
    /// use gudp::message::frame::AckBlock;
    /// assert_eq!(AckBlock::Messages { id: 0, count: 1 }.encoded_len(), 5);
    /// ```
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Messages { .. } => 5,
            Self::Fragments { .. } => 7,
        }
    }

    /// Writes the block at the start of `out` and returns its length.
    ///
    /// ```
    /// use gudp::message::frame::{AckBlock, FrameError};
    /// let b = AckBlock::Messages { id: 0x0102, count: 4 };
    /// assert_eq!(b.encode(&mut [0; 4]), Err(FrameError::NoSpace));
    /// ```
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.encoded_len();
        if out.len() < len {
            return Err(FrameError::NoSpace);
        }
        match *self {
            Self::Messages { id, count } => {
                out[0] = BLOCK_MESSAGES;
                out[1..3].copy_from_slice(&id.to_be_bytes());
                out[3..5].copy_from_slice(&count.to_be_bytes());
            }
            Self::Fragments { id, start, count } => {
                out[0] = BLOCK_FRAGMENTS;
                out[1..3].copy_from_slice(&id.to_be_bytes());
                out[3..5].copy_from_slice(&start.to_be_bytes());
                out[5..7].copy_from_slice(&count.to_be_bytes());
            }
        }
        Ok(len)
    }

    /// Decodes the block at the start of `b` and its length.
    fn decode(b: &[u8]) -> Result<(Self, usize), FrameError> {
        let len = match b.first() {
            None => return Err(FrameError::Truncated),
            Some(&BLOCK_MESSAGES) => 5,
            Some(&BLOCK_FRAGMENTS) => 7,
            Some(_) => return Err(FrameError::BadAck),
        };
        if b.len() < len {
            return Err(FrameError::Truncated);
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let block = if len == 5 {
            Self::Messages {
                id: u16_at(1),
                count: u16_at(3),
            }
        } else {
            Self::Fragments {
                id: u16_at(1),
                start: u16_at(3),
                count: u16_at(5),
            }
        };
        let ok = match block {
            Self::Messages { count, .. } => count > 0,
            Self::Fragments { start, count, .. } => {
                count > 0 && u32::from(start) + u32::from(count) <= 1 << 16
            }
        };
        if ok {
            Ok((block, len))
        } else {
            Err(FrameError::BadAck)
        }
    }
}

/// The blocks of a decoded ack frame (validated), borrowed from the payload.
///
/// ```
/// use gudp::message::frame::{decode, AckBlock, Frame};
/// let payload = [0x83, 0x00, 0x05, 1, 0, 0, 6, 0, 2];
/// let Some(Ok(Frame::Ack { channel, next, blocks })) = decode(&payload, 1191).next() else {
///     panic!()
/// };
/// assert_eq!((channel, next, blocks.len()), (3, 5, 1));
/// let all: Vec<_> = blocks.iter().collect();
/// assert_eq!(all, vec![AckBlock::Messages { id: 6, count: 2 }]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBlocks<'a> {
    bytes: &'a [u8],
    count: u8,
}

impl<'a> AckBlocks<'a> {
    /// No blocks: an ack frame with only its cumulative id.
    pub const EMPTY: AckBlocks<'static> = AckBlocks {
        bytes: &[],
        count: 0,
    };

    /// The first `count` blocks encoded at the start of `bytes`, validated; returns them
    /// and the bytes they take.
    ///
    /// ```
    /// use gudp::message::frame::{AckBlocks, FrameError};
    /// assert_eq!(AckBlocks::parse(&[0, 0, 1, 0, 0], 1), Err(FrameError::BadAck)); // count 0
    /// assert_eq!(AckBlocks::parse(&[0, 0, 1, 0, 1, 9], 1).unwrap().1, 5);
    /// ```
    pub fn parse(bytes: &'a [u8], count: u8) -> Result<(Self, usize), FrameError> {
        let mut used = 0;
        for _ in 0..count {
            used += AckBlock::decode(&bytes[used..])?.1;
        }
        Ok((
            Self {
                bytes: &bytes[..used],
                count,
            },
            used,
        ))
    }

    /// Number of blocks.
    ///
    /// ```
    /// use gudp::message::frame::AckBlocks;
    /// assert_eq!(AckBlocks::EMPTY.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// `true` when there are no blocks.
    ///
    /// ```
    /// use gudp::message::frame::AckBlocks;
    /// assert!(AckBlocks::EMPTY.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded blocks.
    ///
    /// ```
    /// use gudp::message::frame::AckBlocks;
    /// assert!(AckBlocks::EMPTY.bytes().is_empty());
    /// ```
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The blocks, in wire order.
    ///
    /// ```
    /// use gudp::message::frame::AckBlocks;
    /// assert_eq!(AckBlocks::EMPTY.iter().count(), 0);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = AckBlock> + 'a {
        let mut rest = self.bytes;
        std::iter::from_fn(move || {
            let (b, n) = AckBlock::decode(rest).ok()?;
            rest = &rest[n..];
            Some(b)
        })
    }
}

/// One decoded frame, borrowing its data from the payload.
///
/// ```
/// use gudp::message::frame::Frame;
/// let f = Frame::Fragment { channel: 1, id: 7, total: 3000, index: 2, data: &[0; 618] };
/// assert_eq!(f.encoded_len(), 9 + 618);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole message.
    Message {
        /// Channel id (0..=63).
        channel: u8,
        /// The channel's message id (wraps).
        id: u16,
        /// The message.
        data: &'a [u8],
    },
    /// One fragment of a message of `total` bytes.
    Fragment {
        /// Channel id (0..=63).
        channel: u8,
        /// The channel's message id (wraps).
        id: u16,
        /// Length of the whole message.
        total: u32,
        /// Which fragment: its data starts at `index * fragment_size`.
        index: u16,
        /// The fragment's bytes.
        data: &'a [u8],
    },
    /// What the receiver of reliable channel `channel` holds: every id before `next`
    /// (wrap-aware, within the window), and the ranges in `blocks`.
    Ack {
        /// Channel id (0..=63) of the reliable channel acknowledged.
        channel: u8,
        /// The oldest id not yet received (unordered) or delivered (ordered).
        next: u16,
        /// Messages and fragments held beyond `next`.
        blocks: AckBlocks<'a>,
    },
    /// A whole message right after a message frame of the same channel, whose id is one
    /// more (on the wire: type, channel and a varint length; the id is implied).
    NextMessage {
        /// Channel id (0..=63), that of the message frame before it.
        channel: u8,
        /// The channel's message id: the previous frame's plus one (not sent).
        id: u16,
        /// The message.
        data: &'a [u8],
    },
}

/// Bytes of `n` as a LEB128 varint.
fn varint_len(n: usize) -> usize {
    match n {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        _ => 3,
    }
}

/// Bytes a [`Frame::NextMessage`] of `len` bytes takes on the wire.
///
/// ```
/// use gudp::message::frame::next_message_len;
/// assert_eq!(next_message_len(100), 102);
/// assert_eq!(next_message_len(1000), 1003);
/// ```
pub fn next_message_len(len: usize) -> usize {
    1 + varint_len(len) + len
}

/// Why a payload could not be decoded (or a frame encoded).
///
/// ```
/// use gudp::message::frame::{decode, FrameError};
/// let first = decode(&[0x00, 0x00], 1191).next();
/// assert_eq!(first, Some(Err(FrameError::Truncated)));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// The payload ends inside a frame.
    Truncated,
    /// A frame type the specification reserves (none is reserved since the next-message
    /// frame took type `11`; kept so that matches written against it still compile).
    ReservedType(u8),
    /// A fragment whose index lies beyond its message, or whose message is empty.
    BadFragment,
    /// A channel id the configuration does not have.
    UnknownChannel(u8),
    /// A message larger than its channel allows.
    TooLarge {
        /// Length announced.
        len: usize,
        /// The channel's limit.
        max: usize,
    },
    /// A reliable message id too far ahead of the receive window (no honest sender sends it).
    OutOfWindow,
    /// An ack frame with an unknown or empty block, or for a channel that is not reliable.
    BadAck,
    /// A next-message frame not right after a message frame of its channel, or with a
    /// length that is not a minimal varint of at most 65535.
    BadNext,
    /// The output buffer is too small, or a field does not fit its encoding (encode only).
    NoSpace,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "payload ends inside a frame"),
            Self::ReservedType(t) => write!(f, "reserved frame type {t}"),
            Self::BadFragment => write!(f, "fragment index beyond its message"),
            Self::UnknownChannel(c) => write!(f, "unknown channel {c}"),
            Self::TooLarge { len, max } => write!(f, "message of {len} bytes exceeds {max}"),
            Self::OutOfWindow => write!(f, "message id beyond the receive window"),
            Self::BadAck => write!(f, "malformed ack frame"),
            Self::BadNext => write!(f, "next-message frame without its predecessor"),
            Self::NoSpace => write!(f, "frame does not fit"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Length of fragment `index` of a `total`-byte message, or `None` if it has no such fragment.
///
/// ```
/// use gudp::message::frame::fragment_len;
/// assert_eq!(fragment_len(2500, 1000, 2), Some(500));
/// assert_eq!(fragment_len(2500, 1000, 3), None);
/// ```
pub fn fragment_len(total: u32, fragment_size: usize, index: u16) -> Option<usize> {
    let start = usize::from(index).checked_mul(fragment_size)?;
    let total = total as usize;
    (start < total).then(|| (total - start).min(fragment_size))
}

/// Number of fragments of a `total`-byte message.
///
/// ```
/// use gudp::message::frame::fragment_count;
/// assert_eq!(fragment_count(2500, 1000), 3);
/// ```
pub fn fragment_count(total: usize, fragment_size: usize) -> usize {
    total.div_ceil(fragment_size.max(1))
}

impl Frame<'_> {
    /// Bytes this frame takes on the wire.
    ///
    /// ```
    /// use gudp::message::frame::Frame;
    /// assert_eq!(Frame::Message { channel: 0, id: 0, data: b"abc" }.encoded_len(), 8);
    /// ```
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Message { data, .. } => MESSAGE_HEADER_LEN + data.len(),
            Self::Fragment { data, .. } => FRAGMENT_HEADER_LEN + data.len(),
            Self::Ack { blocks, .. } => ACK_HEADER_LEN + blocks.bytes.len(),
            Self::NextMessage { data, .. } => next_message_len(data.len()),
        }
    }

    /// Writes the frame at the start of `out` and returns its length. The caller keeps
    /// fragments consistent with the receiver's `fragment_size` (decode checks it), and a
    /// next-message frame right after the message frame it follows.
    ///
    /// ```
    /// use gudp::message::frame::{Frame, FrameError};
    /// let mut small = [0u8; 4];
    /// let f = Frame::Message { channel: 0, id: 0, data: b"" };
    /// assert_eq!(f.encode(&mut small), Err(FrameError::NoSpace));
    /// ```
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.encoded_len();
        if out.len() < len {
            return Err(FrameError::NoSpace);
        }
        match *self {
            Self::Message { channel, id, data } => {
                let n = u16::try_from(data.len()).map_err(|_| FrameError::NoSpace)?;
                out[0] = type_byte(TYPE_MESSAGE, channel)?;
                out[1..3].copy_from_slice(&id.to_be_bytes());
                out[3..5].copy_from_slice(&n.to_be_bytes());
                out[5..len].copy_from_slice(data);
            }
            Self::Fragment {
                channel,
                id,
                total,
                index,
                data,
            } => {
                out[0] = type_byte(TYPE_FRAGMENT, channel)?;
                out[1..3].copy_from_slice(&id.to_be_bytes());
                out[3..7].copy_from_slice(&total.to_be_bytes());
                out[7..9].copy_from_slice(&index.to_be_bytes());
                out[9..len].copy_from_slice(data);
            }
            Self::Ack {
                channel,
                next,
                blocks,
            } => {
                out[0] = type_byte(TYPE_ACK, channel)?;
                out[1..3].copy_from_slice(&next.to_be_bytes());
                out[3] = blocks.count;
                out[4..len].copy_from_slice(blocks.bytes);
            }
            Self::NextMessage { channel, data, .. } => {
                let n = u16::try_from(data.len()).map_err(|_| FrameError::NoSpace)?;
                out[0] = type_byte(TYPE_NEXT, channel)?;
                let mut v = n;
                let mut i = 1;
                while v >= 0x80 {
                    out[i] = (v as u8 & 0x7F) | 0x80;
                    v >>= 7;
                    i += 1;
                }
                out[i] = v as u8;
                out[i + 1..len].copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

/// A minimal LEB128 varint of at most 65535 at the start of `b`, and its width.
fn read_varint(b: &[u8]) -> Result<(usize, usize), FrameError> {
    let mut v = 0usize;
    for (i, &byte) in b.iter().take(3).enumerate() {
        v |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let minimal = i == 0 || byte != 0;
            return if minimal && v <= usize::from(u16::MAX) {
                Ok((v, i + 1))
            } else {
                Err(FrameError::BadNext)
            };
        }
    }
    Err(if b.len() < 3 {
        FrameError::Truncated
    } else {
        FrameError::BadNext
    })
}

/// The first byte of an ack frame for `channel` (below 64).
pub(crate) fn ack_type_byte(channel: u8) -> u8 {
    (TYPE_ACK << 6) | (channel & 0x3F)
}

fn type_byte(kind: u8, channel: u8) -> Result<u8, FrameError> {
    if usize::from(channel) >= MAX_CHANNELS {
        return Err(FrameError::NoSpace);
    }
    Ok((kind << 6) | channel)
}

/// Iterates over the frames of `payload`; after the first error it yields nothing more.
///
/// ```
/// use gudp::message::frame::decode;
/// assert_eq!(decode(&[], 1191).count(), 0); // an empty payload has no frames
/// ```
pub fn decode(payload: &[u8], fragment_size: usize) -> Frames<'_> {
    Frames {
        rest: payload,
        fragment_size,
        previous: None,
    }
}

/// The iterator [`decode`] returns.
///
/// ```
/// use gudp::message::frame::decode;
/// let mut frames = decode(&[0xC0], 1191);
/// assert!(frames.next().unwrap().is_err()); // a next message with no message before it
/// assert!(frames.next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
    fragment_size: usize,
    /// Channel and id of the frame before, if it was a whole message.
    previous: Option<(u8, u16)>,
}

impl<'a> Frames<'a> {
    fn next_frame(&mut self) -> Result<Frame<'a>, FrameError> {
        let b = self.rest;
        let first = b[0];
        let channel = first & 0x3F;
        let (frame, len) = match first >> 6 {
            TYPE_MESSAGE => {
                let header = b.get(..MESSAGE_HEADER_LEN).ok_or(FrameError::Truncated)?;
                let n = usize::from(u16::from_be_bytes([header[3], header[4]]));
                let end = MESSAGE_HEADER_LEN + n;
                let data = b
                    .get(MESSAGE_HEADER_LEN..end)
                    .ok_or(FrameError::Truncated)?;
                let id = u16::from_be_bytes([header[1], header[2]]);
                (Frame::Message { channel, id, data }, end)
            }
            TYPE_FRAGMENT => {
                let header = b.get(..FRAGMENT_HEADER_LEN).ok_or(FrameError::Truncated)?;
                let id = u16::from_be_bytes([header[1], header[2]]);
                let total = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
                let index = u16::from_be_bytes([header[7], header[8]]);
                let n = fragment_len(total, self.fragment_size, index)
                    .filter(|_| self.fragment_size > 0)
                    .ok_or(FrameError::BadFragment)?;
                let end = FRAGMENT_HEADER_LEN + n;
                let data = b
                    .get(FRAGMENT_HEADER_LEN..end)
                    .ok_or(FrameError::Truncated)?;
                let frame = Frame::Fragment {
                    channel,
                    id,
                    total,
                    index,
                    data,
                };
                (frame, end)
            }
            TYPE_ACK => {
                let header = b.get(..ACK_HEADER_LEN).ok_or(FrameError::Truncated)?;
                let next = u16::from_be_bytes([header[1], header[2]]);
                let (blocks, n) = AckBlocks::parse(&b[ACK_HEADER_LEN..], header[3])?;
                let frame = Frame::Ack {
                    channel,
                    next,
                    blocks,
                };
                (frame, ACK_HEADER_LEN + n)
            }
            _ => {
                let (_, id_before) = self
                    .previous
                    .filter(|&(c, _)| c == channel)
                    .ok_or(FrameError::BadNext)?;
                let (n, width) = read_varint(&b[1..])?;
                let start = 1 + width;
                let data = b.get(start..start + n).ok_or(FrameError::Truncated)?;
                let id = id_before.wrapping_add(1);
                (Frame::NextMessage { channel, id, data }, start + n)
            }
        };
        self.previous = match frame {
            Frame::Message { channel, id, .. } | Frame::NextMessage { channel, id, .. } => {
                Some((channel, id))
            }
            _ => None,
        };
        self.rest = &b[len..];
        Ok(frame)
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.next_frame();
        if r.is_err() {
            self.rest = &[];
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_hex::from_hex as hex;
    use proptest::prelude::*;

    /// The test vectors of docs/message-layer.md, byte for byte.
    #[test]
    fn spec_vectors() {
        let mut buf = [0u8; 512];
        let mut put = |frames: &[Frame<'_>]| {
            let mut n = 0;
            for f in frames {
                n += f.encode(&mut buf[n..]).unwrap();
            }
            buf[..n].to_vec()
        };
        // Vector 1: "hello" on channel 2, id 0x1234.
        let v1 = put(&[Frame::Message {
            channel: 2,
            id: 0x1234,
            data: b"hello",
        }]);
        assert_eq!(v1, hex("02 1234 0005 68656c6c6f"));
        // Vector 2: two messages aggregated in one payload (channel 0 id 0xFFFF, empty;
        // channel 63 id 0, 0xAB).
        let v2 = put(&[
            Frame::Message {
                channel: 0,
                id: 0xFFFF,
                data: b"",
            },
            Frame::Message {
                channel: 63,
                id: 0,
                data: &[0xAB],
            },
        ]);
        assert_eq!(v2, hex("00 ffff 0000  3f 0000 0001 ab"));
        // Vector 3: the last fragment (index 2) of a 25-byte message on channel 3, id 7,
        // with a fragment size of 10: 5 bytes of data.
        let v3 = put(&[Frame::Fragment {
            channel: 3,
            id: 7,
            total: 25,
            index: 2,
            data: b"UVWXY",
        }]);
        assert_eq!(v3, hex("43 0007 00000019 0002 5556575859"));
        let decoded: Vec<_> = decode(&v3, 10).collect();
        assert_eq!(
            decoded,
            vec![Ok(Frame::Fragment {
                channel: 3,
                id: 7,
                total: 25,
                index: 2,
                data: &b"UVWXY"[..]
            })]
        );
        // Index 3 of that message does not exist.
        assert_eq!(
            decode(&hex("43 0007 00000019 0003"), 10).next(),
            Some(Err(FrameError::BadFragment))
        );
        // Vector 6: an ack frame with a message run and a fragment run.
        let mut blocks = [0u8; 12];
        let a = AckBlock::Messages { id: 6, count: 2 }
            .encode(&mut blocks)
            .unwrap();
        let b = AckBlock::Fragments {
            id: 9,
            start: 2,
            count: 3,
        }
        .encode(&mut blocks[a..])
        .unwrap();
        let (parsed, n) = AckBlocks::parse(&blocks, 2).unwrap();
        assert_eq!(n, a + b);
        let ack = Frame::Ack {
            channel: 3,
            next: 5,
            blocks: parsed,
        };
        let v6 = put(&[ack]);
        assert_eq!(v6, hex("83 0005 02 00 0006 0002 01 0009 0002 0003"));
        assert_eq!(decode(&v6, 10).collect::<Vec<_>>(), vec![Ok(ack)]);
        // Vector 7: a run of no messages.
        assert_eq!(
            decode(&hex("83 0005 01 00 0006 0000"), 10).next(),
            Some(Err(FrameError::BadAck))
        );
        // Vector 5: a next-message frame with no message frame before it.
        assert_eq!(
            decode(&hex("c0 00"), 10).next(),
            Some(Err(FrameError::BadNext))
        );
        // Vector 8: "ab" on channel 5, id 0xFFFF, then "c" as the next message (id 0,
        // wrapped), then a 200-byte next message (length varint c8 01).
        let long = [0x5A; 200];
        let v8 = put(&[
            Frame::Message {
                channel: 5,
                id: 0xFFFF,
                data: b"ab",
            },
            Frame::NextMessage {
                channel: 5,
                id: 0,
                data: b"c",
            },
            Frame::NextMessage {
                channel: 5,
                id: 1,
                data: &long,
            },
        ]);
        assert_eq!(&v8[..13], &hex("05 ffff 0002 6162 c5 01 63 c5 c801")[..]);
        let ids: Vec<_> = decode(&v8, 10)
            .map(|f| match f.unwrap() {
                Frame::Message { id, .. } | Frame::NextMessage { id, .. } => id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [0xFFFF, 0, 1]);
        // Vector 9: a next message on another channel than the frame before it, and one
        // whose length is not a minimal varint.
        assert_eq!(
            decode(&hex("05 0001 0000 c6 00"), 10).nth(1),
            Some(Err(FrameError::BadNext))
        );
        assert_eq!(
            decode(&hex("05 0001 0000 c5 8000"), 10).nth(1),
            Some(Err(FrameError::BadNext))
        );
    }

    fn arb_frame() -> impl Strategy<Value = (u8, u16, bool, u32, u16, Vec<u8>)> {
        (
            0u8..64,
            any::<u16>(),
            any::<bool>(),
            1u32..100_000,
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
    }

    proptest! {
        #[test]
        fn round_trip(frames in proptest::collection::vec(arb_frame(), 0..8)) {
            const FS: usize = 300;
            let mut owned = Vec::new();
            for (channel, id, fragment, total, index, data) in &frames {
                if *fragment {
                    let index = *index % fragment_count(*total as usize, FS) as u16;
                    let n = fragment_len(*total, FS, index).unwrap();
                    owned.push((*channel, *id, Some((*total, index)), vec![7u8; n]));
                } else {
                    owned.push((*channel, *id, None, data.clone()));
                }
            }
            let built: Vec<Frame<'_>> = owned.iter().map(|(channel, id, frag, data)| match frag {
                Some((total, index)) => Frame::Fragment { channel: *channel, id: *id, total: *total, index: *index, data },
                None => Frame::Message { channel: *channel, id: *id, data },
            }).collect();
            let mut buf = vec![0u8; 8 * 400];
            let mut n = 0;
            for f in &built {
                n += f.encode(&mut buf[n..]).unwrap();
            }
            let decoded: Vec<Frame<'_>> = decode(&buf[..n], FS).map(Result::unwrap).collect();
            prop_assert_eq!(decoded, built);
        }

        #[test]
        fn next_message_runs_round_trip(
            runs in proptest::collection::vec((0u8..64, any::<u16>(), proptest::collection::vec(0usize..20_000, 1..5)), 1..5),
        ) {
            let data = vec![0xA5u8; 20_000];
            let mut built = Vec::new();
            for (channel, id, lens) in &runs {
                for (k, &len) in lens.iter().enumerate() {
                    let (id, data) = (id.wrapping_add(k as u16), &data[..len]);
                    built.push(if k == 0 {
                        Frame::Message { channel: *channel, id, data }
                    } else {
                        Frame::NextMessage { channel: *channel, id, data }
                    });
                }
            }
            let mut buf = vec![0u8; built.iter().map(Frame::encoded_len).sum()];
            let mut n = 0;
            for f in &built {
                n += f.encode(&mut buf[n..]).unwrap();
            }
            prop_assert_eq!(n, buf.len());
            let decoded: Vec<Frame<'_>> = decode(&buf, 100).map(Result::unwrap).collect();
            prop_assert_eq!(decoded, built);
        }

        #[test]
        fn ack_frames_round_trip(
            channel in 0u8..64,
            next in any::<u16>(),
            raw in proptest::collection::vec((any::<bool>(), any::<u16>(), 0u16..60_000, 1u16..5000), 0..40),
        ) {
            let blocks: Vec<AckBlock> = raw
                .iter()
                .map(|&(frag, id, start, count)| if frag {
                    AckBlock::Fragments { id, start, count }
                } else {
                    AckBlock::Messages { id, count }
                })
                .collect();
            let mut bytes = vec![0u8; 7 * blocks.len()];
            let mut n = 0;
            for b in &blocks {
                n += b.encode(&mut bytes[n..]).unwrap();
            }
            let (parsed, used) = AckBlocks::parse(&bytes[..n], blocks.len() as u8).unwrap();
            prop_assert_eq!(used, n);
            prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), blocks);
            let frame = Frame::Ack { channel, next, blocks: parsed };
            let mut buf = vec![0u8; ACK_HEADER_LEN + n + 3];
            let len = frame.encode(&mut buf).unwrap();
            buf[len..].copy_from_slice(&[0x00, 0x00, 0x00]); // a truncated message frame after it
            let mut frames = decode(&buf, 100);
            prop_assert_eq!(frames.next(), Some(Ok(frame)));
            prop_assert_eq!(frames.next(), Some(Err(FrameError::Truncated)));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000), fs in 0usize..1300) {
            let mut consumed = 0;
            for f in decode(&bytes, fs) {
                match f {
                    Ok(f) => consumed += f.encoded_len(),
                    Err(_) => break,
                }
            }
            prop_assert!(consumed <= bytes.len());
        }
    }
}
