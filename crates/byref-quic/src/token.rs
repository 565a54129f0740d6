//! The shared secret every request proves it knows.
//!
//! The token itself never crosses the wire. Each request carries a *proof*: the token's keyed
//! BLAKE3 hash of a value both ends export from their connection's TLS session
//! ([`binding`]). The value is unique to that connection, so a server that is not the one the
//! client meant (a URL or handle naming an attacker's host, with the attacker's certificate
//! pinned) learns a proof that is useless on any other connection, and nothing about the token.
//!
//! A daemon makes a random token on first start and writes it, hex-encoded, to a 0600 file
//! in the user's config directory (`$BYREF_CONFIG_DIR/token`, default
//! `~/.config/byref/token`): home directories are shared between an HPC cluster's login and
//! compute nodes, so workers find it with nothing to configure. `BYREF_TOKEN` overrides it on
//! either side.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use byref_core::own_file;
use byref_core::secrets;

use crate::protocol::TOKEN_LEN;

/// The environment variable (or config-file line) that overrides the token file.
pub const TOKEN_VAR: &str = "BYREF_TOKEN";

/// The largest token file read: one hex token and a newline, with room to spare.
const MAX_TOKEN_FILE: u64 = 4096;

/// A token. Compared in constant time; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub [u8; TOKEN_LEN]);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// A fresh random token.
    pub fn random() -> Self {
        let mut bytes = [0; TOKEN_LEN];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Token(bytes)
    }

    /// The proof of this token on the connection with `binding` (see [`binding`]).
    pub fn proof(&self, binding: &[u8; BINDING_LEN]) -> [u8; TOKEN_LEN] {
        *blake3::keyed_hash(&self.0, binding).as_bytes()
    }

    /// Whether `proof` proves this token on the connection with `binding`, in time
    /// independent of where they differ (`blake3::Hash` compares in constant time).
    pub fn proven_by(&self, binding: &[u8; BINDING_LEN], proof: &[u8; TOKEN_LEN]) -> bool {
        blake3::keyed_hash(&self.0, binding) == blake3::Hash::from_bytes(*proof)
    }

    /// The token as the token file and `BYREF_TOKEN` spell it: 64 hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.len() != TOKEN_LEN * 2 {
            return None;
        }
        let mut bytes = [0; TOKEN_LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Token(bytes))
    }
}

/// Length of a connection's binding value.
pub const BINDING_LEN: usize = 32;

/// The TLS exporter label (RFC 5705 / RFC 8446 section 7.5) of the binding value.
const BINDING_LABEL: &[u8] = b"EXPORTER-byref-token-proof";

/// The value both ends of `connection` derive from its TLS session and nobody else can: what
/// a token proof is bound to.
pub fn binding(connection: &quinn::Connection) -> io::Result<[u8; BINDING_LEN]> {
    let mut out = [0; BINDING_LEN];
    connection
        .export_keying_material(&mut out, BINDING_LABEL, b"")
        .map_err(|e| io::Error::other(format!("TLS exporter: {e:?}")))?;
    Ok(out)
}

/// Where the token file lives.
pub fn token_path() -> Option<PathBuf> {
    secrets::config_dir().map(|dir| dir.join("token"))
}

/// The client's token: `BYREF_TOKEN`, else the token file. `None` if neither exists.
pub fn client_token() -> io::Result<Option<Token>> {
    let secret = secrets::secret(TOKEN_VAR).map_err(|e| io::Error::other(e.to_string()))?;
    if let Some(text) = secret {
        return parse(&text, TOKEN_VAR).map(Some);
    }
    match token_path() {
        Some(path) => read_token_file(&path),
        None => Ok(None),
    }
}

/// The token in the file at `path` ([`own_file`]: this user's, private, small); `None` if
/// there is none.
fn read_token_file(path: &Path) -> io::Result<Option<Token>> {
    let text = own_file::read(path, MAX_TOKEN_FILE)
        .and_then(|file| {
            file.map(|f| f.private("the token").and_then(|()| f.text()))
                .transpose()
        })
        .map_err(|e| io::Error::other(e.to_string()))?;
    text.map(|text| parse(&text, &path.display().to_string()))
        .transpose()
}

/// The server's token: `BYREF_TOKEN`, else the token file, made (0600) if missing.
pub fn server_token() -> io::Result<Token> {
    if let Some(token) = client_token()? {
        return Ok(token);
    }
    let path = token_path().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no config directory: set BYREF_CONFIG_DIR, HOME or BYREF_TOKEN",
        )
    })?;
    load_or_create(&path)
}

/// The token in the file at `path`, made if missing. Processes racing to make it (two
/// producers opening `peer://` at once on a fresh machine) all end up with the one that was
/// created first: a created token file is never replaced.
pub fn load_or_create(path: &Path) -> io::Result<Token> {
    let token = Token::random();
    match create_private(path, token.to_hex().as_bytes()) {
        Ok(()) => Ok(token),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_token_file(path)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the token file went")),
        Err(e) => Err(e),
    }
}

fn parse(text: &str, origin: &str) -> io::Result<Token> {
    Token::from_hex(text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{origin} does not hold a token (64 hex digits)"),
        )
    })
}

/// Creates a file only its owner can read, whole or not at all, and never replaces one:
/// the data goes to a private temporary file, which is then hard-linked to `path` (an
/// exclusive create: it fails with `AlreadyExists` if `path` exists).
pub fn create_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", byref_core::RefId::random()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written
}

#[cfg(test)]
mod tests {
    use super::{Token, load_or_create};

    /// Two producers opening `peer://` at once on a fresh machine: every one of them must
    /// end up with the token the others (and their workers) use.
    #[test]
    fn racing_creators_all_get_the_one_token_made_first() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config").join("token");
        let tokens: Vec<Token> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..16)
                .map(|_| s.spawn(|| load_or_create(&path).unwrap()))
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert!(tokens.iter().all(|t| t.0 == tokens[0].0));
        let on_disk = Token::from_hex(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk.0, tokens[0].0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary files left behind");
    }

    #[test]
    fn hex_round_trip_and_proofs() {
        let t = Token::random();
        let back = Token::from_hex(&t.to_hex()).unwrap();
        assert_eq!(back.0, t.0);
        let binding = [3; super::BINDING_LEN];
        let proof = t.proof(&binding);
        assert_ne!(proof, t.0, "the proof is not the token");
        assert!(back.proven_by(&binding, &proof));
        let mut other = proof;
        other[31] ^= 1;
        assert!(!t.proven_by(&binding, &other));
        assert!(
            !t.proven_by(&[4; super::BINDING_LEN], &proof),
            "bound to its connection"
        );
        assert!(!Token::random().proven_by(&binding, &proof));
        assert!(Token::from_hex("zz").is_none());
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }
}
