//! netcode's server-address encoding, shared by a token's public and private parts: a type
//! byte (1: IPv4, 2: IPv6), the address, then the port, every integer little-endian.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::TokenError;

/// Most server addresses a token lists (netcode's limit).
///
/// ```
/// assert_eq!(gudp::secure::MAX_SERVER_ADDRESSES, 32);
/// ```
pub const MAX_SERVER_ADDRESSES: usize = 32;

/// Bytes `addr` takes encoded.
pub(super) fn encoded_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 1 + 4 + 2,
        SocketAddr::V6(_) => 1 + 16 + 2,
    }
}

/// Writes `addr` at the start of `out` (which the caller sized) and returns its length.
pub(super) fn write(addr: &SocketAddr, out: &mut [u8]) -> usize {
    match addr {
        SocketAddr::V4(a) => {
            out[0] = 1;
            out[1..5].copy_from_slice(&a.ip().octets());
            out[5..7].copy_from_slice(&a.port().to_le_bytes());
        }
        SocketAddr::V6(a) => {
            out[0] = 2;
            for (i, segment) in a.ip().segments().iter().enumerate() {
                out[1 + 2 * i..3 + 2 * i].copy_from_slice(&segment.to_le_bytes());
            }
            out[17..19].copy_from_slice(&a.port().to_le_bytes());
        }
    }
    encoded_len(addr)
}

/// Reads one address from the start of `data`: the address and its encoded length.
pub(super) fn read(data: &[u8]) -> Result<(SocketAddr, usize), TokenError> {
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    match data.first() {
        Some(1) if data.len() >= 7 => {
            let ip = Ipv4Addr::new(data[1], data[2], data[3], data[4]);
            Ok((SocketAddr::from((ip, u16_at(5))), 7))
        }
        Some(2) if data.len() >= 19 => {
            let segments: [u16; 8] = core::array::from_fn(|i| u16_at(1 + 2 * i));
            Ok((SocketAddr::from((Ipv6Addr::from(segments), u16_at(17))), 19))
        }
        Some(1 | 2) | None => Err(TokenError::Truncated),
        Some(&byte) => Err(TokenError::AddressType(byte)),
    }
}

/// Reads an address count and that many addresses from the start of `data`, calling
/// `each` for every one; returns the bytes read. Allocates nothing.
pub(super) fn read_list(
    data: &[u8],
    mut each: impl FnMut(SocketAddr),
) -> Result<usize, TokenError> {
    let count = data.get(..4).ok_or(TokenError::Truncated)?;
    let count = u32::from_le_bytes(count.try_into().expect("4 bytes"));
    if count == 0 || count as usize > MAX_SERVER_ADDRESSES {
        return Err(TokenError::AddressCount(count));
    }
    let mut at = 4;
    for _ in 0..count {
        let (addr, len) = read(&data[at..])?;
        each(addr);
        at += len;
    }
    Ok(at)
}

/// Writes an address count and the addresses; returns the bytes written.
pub(super) fn write_list(addrs: &[SocketAddr], out: &mut [u8]) -> usize {
    out[..4].copy_from_slice(&(addrs.len() as u32).to_le_bytes());
    let mut at = 4;
    for addr in addrs {
        at += write(addr, &mut out[at..]);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_in_netcode_encoding() {
        let addrs: [SocketAddr; 2] = [
            "127.0.0.1:40000".parse().unwrap(),
            "[::1]:5".parse().unwrap(),
        ];
        let mut buf = [0u8; 64];
        let n = write_list(&addrs, &mut buf);
        assert_eq!(n, 4 + 7 + 19);
        assert_eq!(&buf[..11], &[2, 0, 0, 0, 1, 127, 0, 0, 1, 0x40, 0x9c]);
        let mut seen = Vec::new();
        assert_eq!(read_list(&buf, |a| seen.push(a)), Ok(n));
        assert_eq!(seen, addrs);
        assert_eq!(read_list(&buf[..10], |_| {}), Err(TokenError::Truncated));
        buf[4] = 3;
        assert_eq!(read_list(&buf, |_| {}), Err(TokenError::AddressType(3)));
        assert_eq!(read_list(&[0; 8], |_| {}), Err(TokenError::AddressCount(0)));
        assert_eq!(
            read_list(&[33, 0, 0, 0], |_| {}),
            Err(TokenError::AddressCount(33))
        );
    }
}
