//! Secrets (passwords, keys, tokens): from the environment or the user's config file, never
//! from a URL or a handle.
//!
//! The config file is `$BYREF_CONFIG_DIR/byref.env` (default `~/.config/byref/byref.env`),
//! `NAME=value` lines in the dotenv style; home directories are usually shared between an HPC
//! cluster's login and compute nodes, so one file serves the submitting side and the workers.
//! A variable set in the environment wins over the file.
//!
//! Those variables are global: one Redis password, one set of AWS keys. They go only to the
//! host the user configured — a store the user opened by its URL, or the default store's host
//! (`BYREF_URL`) — never to a host that only a handle named: a handle may come from anyone.
//! Secrets for other hosts go in the credentials file, `$BYREF_CONFIG_DIR/credentials`, one
//! line per host as in `~/.netrc` or `~/.pgpass`, which must be private (mode 0600, as SSH
//! requires of its keys):
//!
//! ```text
//! # scheme  host[:port]         field=value ...
//! redis     10.1.0.5:6379       username=alice password=s3cret
//! s3        minio.example:9000  aws_access_key_id=... aws_secret_access_key=...
//! ```

use std::path::PathBuf;

use crate::own_file;
use crate::{Result, StoreUrl};

/// Where the default store is configured (environment or config file).
pub const DEFAULT_URL_VAR: &str = "BYREF_URL";

/// The directory byref reads its configuration from.
pub fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BYREF_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("byref"))
}

/// The largest `byref.env` or `credentials` file read: a few lines of settings.
const MAX_CONFIG_FILE: u64 = 64 << 10;

/// The value of setting `name` (a URL, a fingerprint, a path: nothing secret): the
/// environment variable, else the config file's line.
pub fn setting(name: &str) -> Result<Option<String>> {
    from_env_or_file(name, false)
}

/// The value of secret `name` (a password, a key, a token): the environment variable, else
/// the config file's line, which then must be readable by its owner only.
pub fn secret(name: &str) -> Result<Option<String>> {
    from_env_or_file(name, true)
}

fn from_env_or_file(name: &str, secret: bool) -> Result<Option<String>> {
    if let Ok(value) = std::env::var(name) {
        return Ok(Some(value));
    }
    let Some(file) = config_dir()
        .map(|dir| own_file::read(&dir.join("byref.env"), MAX_CONFIG_FILE))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    let private = if secret { file.private(name) } else { Ok(()) };
    let Some(value) = parse_line(&file.text()?, name) else {
        return Ok(None);
    };
    // Only the line asked for decides whether the file had to be private.
    private.map(|()| Some(value))
}

/// Secret `field` for the store `url` opens at `host` (`host:port`): the credentials file's
/// line for that scheme and host; else, for the host the user configured (see the module
/// docs), the global variable `global`. `None` if neither applies.
pub fn for_host(url: &StoreUrl, host: &str, field: &str, global: &str) -> Result<Option<String>> {
    if let Some(value) = in_credentials_file(url, host, field)? {
        return Ok(Some(value));
    }
    if !globals_apply(url, host) {
        return Ok(None);
    }
    secret(global)
}

/// Whether the global secrets may go to `host` of the store `url` opens: the user gave the
/// URL, or it is the default store's host.
pub fn globals_apply(url: &StoreUrl, host: &str) -> bool {
    !url.is_named_by_handle() || is_configured_host(family(url.scheme()), host)
}

/// The credentials file's name for a scheme: one for every way of reaching Redis.
fn family(scheme: &str) -> &str {
    match scheme {
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => "redis",
        other => other,
    }
}

/// Whether `host` is the default store's (`BYREF_URL`), for `scheme`.
fn is_configured_host(scheme: &str, host: &str) -> bool {
    let Ok(Some(default)) = setting(DEFAULT_URL_VAR) else {
        return false;
    };
    let Ok(default) = StoreUrl::parse(&default) else {
        return false;
    };
    let same_scheme = family(default.scheme()) == scheme;
    let authority = |u: &url::Url| {
        format!(
            "{}:{}",
            u.host_str().unwrap_or_default(),
            u.port().unwrap_or_default()
        )
    };
    same_scheme
        && (default.hosts().iter().any(|h| h == host)
            || authority(default.url()) == host
            || default.url().host_str() == Some(host))
}

/// The credentials file's value of `field` for the store `url` opens at `host`; an error if
/// the file is not one byref may trust with secrets ([`own_file`]).
pub fn in_credentials_file(url: &StoreUrl, host: &str, field: &str) -> Result<Option<String>> {
    let scheme = family(url.scheme());
    let Some(path) = config_dir().map(|d| d.join("credentials")) else {
        return Ok(None);
    };
    let Some(file) = own_file::read(&path, MAX_CONFIG_FILE)? else {
        return Ok(None);
    };
    file.private("credentials")?;
    Ok(credentials_line(&file.text()?, scheme, host, field))
}

fn credentials_line(text: &str, scheme: &str, host: &str, field: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if words.next()? != scheme || words.next()? != host {
            return None;
        }
        words.find_map(|word| {
            let (name, value) = word.split_once('=')?;
            (name == field).then(|| value.to_owned())
        })
    })
}

fn parse_line(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=')?;
        (key.trim() == name).then(|| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')));
            unquoted.unwrap_or(value).to_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::{credentials_line, parse_line};

    #[test]
    fn reads_credentials_lines_by_scheme_and_host() {
        let text = "# who where what\nredis 10.0.0.5:6379 username=alice password=a=b\n\
                    s3 minio:9000 aws_access_key_id=K\nredis other:6379 password=x\n";
        let get = |scheme, host, field| credentials_line(text, scheme, host, field);
        assert_eq!(
            get("redis", "10.0.0.5:6379", "password").as_deref(),
            Some("a=b")
        );
        assert_eq!(
            get("redis", "10.0.0.5:6379", "username").as_deref(),
            Some("alice")
        );
        assert_eq!(get("redis", "other:6379", "password").as_deref(), Some("x"));
        assert_eq!(get("redis", "10.0.0.5:6380", "password"), None);
        assert_eq!(
            get("s3", "minio:9000", "aws_access_key_id").as_deref(),
            Some("K")
        );
        assert_eq!(get("redis", "minio:9000", "aws_access_key_id"), None);
    }

    #[test]
    fn reads_dotenv_lines() {
        let text = "# comment\nexport A=1\nB = \"two words\"\nC='x=y'\n";
        assert_eq!(parse_line(text, "A").as_deref(), Some("1"));
        assert_eq!(parse_line(text, "B").as_deref(), Some("two words"));
        assert_eq!(parse_line(text, "C").as_deref(), Some("x=y"));
        assert_eq!(parse_line(text, "D"), None);
    }
}
