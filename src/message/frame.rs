//! Wire framing of the message layer: a packet payload is a sequence of frames, each a whole
//! message or one fragment of a large one. All integers are big-endian.
//!
//! ```text
//! message frame:  | 00cccccc | id: u16 | len: u16   | data[len]                  |
//! fragment frame: | 01cccccc | id: u16 | total: u32 | index: u16 | data[derived] |
//! ```
//!
//! `cccccc` is the channel id (0..=63). A fragment's data length is not sent: every fragment
//! but the last carries exactly `fragment_size` bytes (`max_payload - 9`), the last the rest
//! of `total`. Types `10` and `11` are reserved. `docs/message-layer.md` is the
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

const TYPE_MESSAGE: u8 = 0b00;
const TYPE_FRAGMENT: u8 = 0b01;

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
    /// A frame type the specification reserves.
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
        }
    }

    /// Writes the frame at the start of `out` and returns its length. The caller keeps
    /// fragments consistent with the receiver's `fragment_size` (decode checks it).
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
        }
        Ok(len)
    }
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
    }
}

/// The iterator [`decode`] returns.
///
/// ```
/// use gudp::message::frame::decode;
/// let mut frames = decode(&[0xC0], 1191);
/// assert!(frames.next().unwrap().is_err()); // reserved type 11
/// assert!(frames.next().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
    fragment_size: usize,
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
            other => return Err(FrameError::ReservedType(other)),
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
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The test vectors of docs/message-layer.md, byte for byte.
    #[test]
    fn spec_vectors() {
        let mut buf = [0u8; 64];
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
        // A reserved type.
        assert_eq!(
            decode(&hex("80 0000 0000"), 10).next(),
            Some(Err(FrameError::ReservedType(2)))
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
