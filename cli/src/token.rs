//! `gudp keygen` and `gudp token`: the key a backend shares with its servers, and connect
//! tokens minted with it, as files; and reading them back for `serve` and `connect`.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gudp::secure::{ConnectToken, PrivateKey, TokenParams, USER_DATA_LEN};
use gudp::DaemonConfig;

/// What `gudp token` was asked to mint.
pub struct TokenArgs {
    pub key_file: PathBuf,
    pub servers: Vec<String>,
    pub client_id: u64,
    pub lifetime: u64,
    pub user_data: Option<String>,
    pub out: PathBuf,
}

/// Writes a new key from the operating system's randomness to `out` (which must not exist;
/// readable by its owner only on Unix).
pub fn keygen(out: &Path) -> Result<ExitCode, String> {
    let key = PrivateKey::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    writeln!(file, "{}", key.to_hex())
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    println!("wrote a new private key to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Reads a key file (64 hexadecimal digits).
pub fn read_key(path: &Path) -> Result<PrivateKey, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKey::from_hex(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a token file (the token's 2,048 bytes).
pub fn read_token(path: &Path) -> Result<ConnectToken, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    ConnectToken::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn server_addr(text: &str) -> Result<SocketAddr, String> {
    let mut addrs = text
        .to_socket_addrs()
        .map_err(|e| format!("bad server address '{text}': {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("'{text}' resolves to no address"))
}

/// Mints a token for `args.client_id` on `args.servers` and writes it to `args.out`.
pub fn mint(args: TokenArgs) -> Result<ExitCode, String> {
    let key = read_key(&args.key_file)?;
    let servers = args
        .servers
        .iter()
        .map(|s| server_addr(s))
        .collect::<Result<Vec<_>, _>>()?;
    let protocol_id = DaemonConfig::default().protocol.protocol_id.into();
    let mut params = TokenParams::new(protocol_id, args.client_id, servers);
    params.lifetime_seconds = args.lifetime;
    if let Some(text) = &args.user_data {
        if text.len() > USER_DATA_LEN {
            return Err(format!(
                "user data is at most {USER_DATA_LEN} bytes, got {}",
                text.len()
            ));
        }
        params.user_data[..text.len()].copy_from_slice(text.as_bytes());
    }
    let token = ConnectToken::mint(&key, &params).map_err(|e| format!("cannot mint: {e}"))?;
    fs::write(&args.out, token.to_bytes())
        .map_err(|e| format!("cannot write {}: {e}", args.out.display()))?;
    println!(
        "wrote a token for client {} on {:?}, valid {} s, to {}",
        args.client_id,
        token.server_addresses(),
        args.lifetime,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
