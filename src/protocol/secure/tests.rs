//! The token test vector of docs/protocol.md §12, and properties of minting and opening.

use super::*;
use crate::test_hex::to_hex as hex;
use proptest::prelude::*;

fn vector_token() -> ConnectToken {
    let key = PrivateKey::from_bytes(core::array::from_fn(|i| i as u8));
    let mut params = TokenParams::new(
        0x4755_4402,
        0x0102_0304_0506_0708,
        vec!["127.0.0.1:40000".parse().unwrap()],
    );
    params.create_timestamp = 1_700_000_000;
    params.user_data[..4].copy_from_slice(b"user");
    let secrets =
        TokenSecrets::from_parts(core::array::from_fn(|i| i as u8), [0x11; 32], [0x22; 32]);
    ConnectToken::mint_with(&key, &params, &secrets).unwrap()
}

fn server() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn open(key: &PrivateKey, bytes: &[u8]) -> Result<private::Opened, TokenError> {
    let token = ConnectToken::from_bytes(bytes)?;
    private::open(
        key,
        token.protocol_id(),
        token.timestamps().1,
        token.nonce(),
        token.sealed(),
        server(),
    )
}

/// The vector printed in docs/protocol.md §12.2.
#[test]
fn token_test_vector() {
    let bytes = vector_token().to_bytes();
    assert_eq!(hex(&bytes[..61]), PUBLIC_HEAD);
    assert_eq!(hex(&bytes[61..93]), SEALED_HEAD);
    assert_eq!(hex(&bytes[1069..1085]), SEALED_TAG);
    assert_eq!(hex(&bytes[1085..1100]), PUBLIC_TAIL);
    assert!(bytes[1100 + 64..].iter().all(|&b| b == 0));
    let key = PrivateKey::from_bytes(core::array::from_fn(|i| i as u8));
    let opened = open(&key, &bytes).unwrap();
    assert_eq!(opened.info.client_id, 0x0102_0304_0506_0708);
    assert_eq!(&opened.info.user_data[..4], b"user");
    assert_eq!(
        (opened.client_to_server_key, opened.server_to_client_key),
        ([0x11; 32], [0x22; 32])
    );
    assert!(opened.lists_server);
}

const PUBLIC_HEAD: &str = "4e4554434f444520312e303200\
                           0244554700000000\
                           00f1536500000000\
                           1ef1536500000000\
                           000102030405060708090a0b0c0d0e0f1011121314151617";
const SEALED_HEAD: &str = "96c5097a94d18faf394426ceca52a8e84a3828a5fc9681fa6e0b2ea72cbce448";
const SEALED_TAG: &str = "fd7c794e54920c58554f02ffa63cdb90";
const PUBLIC_TAIL: &str = "0a00000001000000017f000001409c";

#[test]
fn wrong_key_and_wrong_server_are_told_apart() {
    let bytes = vector_token().to_bytes();
    assert!(matches!(
        open(&PrivateKey::from_bytes([0; 32]), &bytes),
        Err(TokenError::Forged)
    ));
    let token = ConnectToken::from_bytes(&bytes).unwrap();
    let key = PrivateKey::from_bytes(core::array::from_fn(|i| i as u8));
    let elsewhere = private::open(
        &key,
        token.protocol_id(),
        token.timestamps().1,
        token.nonce(),
        token.sealed(),
        "127.0.0.1:40001".parse().unwrap(),
    );
    assert!(!elsewhere.unwrap().lists_server);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A minted token survives serializing; any single-byte change to what a request
    /// carries to the server (version, protocol id, expiry, nonce, sealed part) is refused.
    #[test]
    fn minted_tokens_round_trip_and_every_byte_is_bound(
        client_id: u64,
        lifetime in 0u64..100_000,
        port in 1u16..,
        v6: bool,
        user_data in proptest::collection::vec(any::<u8>(), USER_DATA_LEN),
        at in prop_oneof![0usize..21, 29usize..1085],
        flip in 1u8..,
    ) {
        let key = PrivateKey::from_bytes([0x5a; 32]);
        let addr: SocketAddr = if v6 { (std::net::Ipv6Addr::LOCALHOST, port).into() } else { ([127, 0, 0, 1], port).into() };
        let mut params = TokenParams::new(0x4755_4402, client_id, vec![addr, server()]);
        params.lifetime_seconds = lifetime;
        params.user_data.copy_from_slice(&user_data);
        let token = ConnectToken::mint(&key, &params).unwrap();
        let mut bytes = token.to_bytes();
        prop_assert_eq!(&ConnectToken::from_bytes(&bytes).unwrap(), &token);
        let opened = open(&key, &bytes).unwrap();
        prop_assert_eq!(opened.info.client_id, client_id);
        prop_assert_eq!(&opened.info.user_data[..], &user_data[..]);
        bytes[at] ^= flip;
        prop_assert!(open(&key, &bytes).is_err(), "byte {} changed", at);
    }

    /// Parsing and opening never panic, whatever the bytes.
    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..2100), version: bool) {
        if version && bytes.len() >= 13 {
            bytes[..13].copy_from_slice(VERSION_INFO);
        }
        let _ = open(&PrivateKey::from_bytes([1; 32]), &bytes);
    }
}
