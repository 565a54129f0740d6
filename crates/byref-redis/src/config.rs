//! `redis://`, `rediss://` and `redis+cluster://` URLs, and the secrets that stay out of them.

use std::time::Duration;

use byref_core::{Error, Result, StoreUrl, UrlBuilder, secrets};

/// Default chunk size. Each chunk is packed into a fresh command buffer by the client; above
/// glibc's dynamic mmap threshold (32 MiB at most) every such buffer is newly mapped memory and
/// pays a page fault per 4 KiB. Measured on 100 MB puts (2-core VM, loopback): 64 MiB chunks
/// 184 ms, 16 MiB 127 ms, 8 MiB 101 ms, 4 MiB 80 ms, against 92 ms for redis-py's raw SET.
pub(crate) const DEFAULT_CHUNK: u64 = 4 << 20;
/// Redis refuses values larger than this.
const MAX_CHUNK: u64 = 512 << 20;

/// A Redis store's settings, parsed from its URL and the environment.
#[derive(Clone)]
pub(crate) struct Config {
    /// The URL handles carry: no password, canonical option order.
    pub(crate) display: String,
    /// Connection URLs (one, or every cluster seed), without credentials.
    pub(crate) nodes: Vec<String>,
    /// Redis Cluster rather than a single server.
    pub(crate) cluster: bool,
    /// Prepended to every key, so several users can share a server.
    pub(crate) prefix: String,
    /// Objects larger than this are split into chunks of this size.
    pub(crate) chunk: u64,
    /// How long connecting to a server may take before the operation fails.
    pub(crate) connect_timeout: Duration,
    /// The response-time allowance of a small request; large ones get more (see `deadline`).
    pub(crate) timeout: Duration,
    /// From the credentials file's line for the host, else (for the host the user configured)
    /// `BYREF_REDIS_USERNAME` (environment or config file).
    pub(crate) username: Option<String>,
    /// Likewise, `password=` or `BYREF_REDIS_PASSWORD`; never displayed.
    pub(crate) password: Option<String>,
    /// `rediss://`: the certificate authorities (PEM) to trust instead of the public web's,
    /// from the file `BYREF_REDIS_CA` names (a site's own CA). Not from the URL: which
    /// servers to trust is the user's choice, not a handle's.
    pub(crate) ca: Option<Vec<u8>>,
}

/// The environment variable (or config-file line) naming a PEM file of CAs for `rediss://`.
pub(crate) const CA_VAR: &str = "BYREF_REDIS_CA";

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.display)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Every `host:port` of the URL (port 6379 where none is given).
fn hosts(url: &StoreUrl) -> Result<Vec<String>> {
    let with_port = |h: &str| {
        if h.contains(':') {
            h.to_owned()
        } else {
            format!("{h}:6379")
        }
    };
    if !url.hosts().is_empty() {
        return Ok(url.hosts().iter().map(|h| with_port(h)).collect());
    }
    let parsed = url.url();
    let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or_else(|| {
        Error::Config(format!(
            "{}:// URLs need a host: {}",
            url.scheme(),
            url.redacted()
        ))
    })?;
    Ok(vec![format!("{host}:{}", parsed.port().unwrap_or(6379))])
}

/// The database number in the URL's path (0 when absent; only 0 on a cluster).
fn database(url: &StoreUrl, cluster: bool) -> Result<u32> {
    let path = url.url().path().trim_matches('/');
    let db: u32 = if path.is_empty() {
        0
    } else {
        path.parse()
            .map_err(|_| Error::Config(format!("Redis database must be a number: {path:?}")))?
    };
    if cluster && db != 0 {
        return Err(Error::Config("Redis Cluster has only database 0".into()));
    }
    Ok(db)
}

impl Config {
    pub(crate) fn parse(mut url: StoreUrl) -> Result<Self> {
        let scheme = url.scheme().to_owned();
        let cluster = scheme == "redis+cluster";
        url.refuse_credentials(
            "set BYREF_REDIS_PASSWORD (and BYREF_REDIS_USERNAME) in the environment or in \
             ~/.config/byref/byref.env, or a line in ~/.config/byref/credentials",
        )?;
        let hosts = hosts(&url)?;
        // Per host: a handle naming another server must not make us send it our password.
        let secret = |field: &str, global: &str| -> Result<Option<String>> {
            for host in &hosts {
                if let Some(value) = secrets::for_host(&url, host, field, global)? {
                    return Ok(Some(value));
                }
            }
            Ok(None)
        };
        let ca = match (scheme.starts_with("rediss"), secrets::setting(CA_VAR)?) {
            (true, Some(path)) => Some(std::fs::read(&path).map_err(|e| {
                Error::Config(format!("{CA_VAR}={path}: cannot read the CA file: {e}"))
            })?),
            _ => None,
        };
        let username = secret("username", "BYREF_REDIS_USERNAME")?;
        let password = secret("password", "BYREF_REDIS_PASSWORD")?;
        let db = database(&url, cluster)?;
        let prefix = url.take("prefix").unwrap_or_else(|| "byref:".to_owned());
        let chunk = url.take_parsed("chunk_size")?.unwrap_or(DEFAULT_CHUNK);
        if !(1..=MAX_CHUNK).contains(&chunk) {
            return Err(Error::Config(format!(
                "chunk_size must be 1..={MAX_CHUNK} bytes, not {chunk}"
            )));
        }
        let connect_timeout = url
            .take_secs("connect_timeout")?
            .unwrap_or(Duration::from_secs(5));
        let timeout = url.take_secs("timeout")?.unwrap_or(Duration::from_secs(30));
        url.finish()?;

        let wire = if scheme == "rediss" {
            "rediss"
        } else {
            "redis"
        };
        let nodes = hosts.iter().map(|h| format!("{wire}://{h}/{db}")).collect();
        let location = match cluster {
            true => hosts.join(","),
            false => format!("{}/{db}", hosts.join(",")),
        };
        let display = UrlBuilder::new(&scheme, &location)
            .option_if("prefix", (prefix != "byref:").then_some(&prefix))
            .option_if("chunk_size", (chunk != DEFAULT_CHUNK).then_some(chunk))
            .build();
        Ok(Config {
            display,
            nodes,
            cluster,
            prefix,
            chunk,
            connect_timeout,
            timeout,
            username,
            password,
            ca,
        })
    }

    /// How long an operation moving `bytes` may take: the base timeout plus time for the bytes
    /// at a pessimistic 10 MB/s, so a multi-gigabyte transfer is never cut off like a small
    /// request that hangs.
    pub(crate) fn deadline(&self, bytes: u64) -> Duration {
        self.timeout + Duration::from_secs_f64(bytes as f64 / 10e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config> {
        Config::parse(StoreUrl::parse(s)?)
    }

    #[test]
    fn urls_parse_and_display_without_secrets() {
        let c = parse("redis://127.0.0.1:7000/2?prefix=p:&chunk_size=1024").unwrap();
        assert_eq!(
            c.display,
            "redis://127.0.0.1:7000/2?prefix=p:&chunk_size=1024"
        );
        assert_eq!(c.nodes, ["redis://127.0.0.1:7000/2"]);
        let c = parse("redis+cluster://a:1,b:2").unwrap();
        assert!(c.cluster);
        assert_eq!(c.nodes, ["redis://a:1/0", "redis://b:2/0"]);
        assert_eq!(parse("redis://h").unwrap().display, "redis://h:6379/0");
    }

    #[test]
    fn bad_urls_are_config_errors() {
        for bad in [
            "redis://:secret@h:1",
            "redis://user:secret@h:1",
            "redis://h:1/x",
            "redis://h:1?chunk_size=0",
            "redis://h:1?colour=red",
            "redis+cluster://a:1,b:2/3",
            "redis://h:1?timeout=-1",
        ] {
            assert!(matches!(parse(bad), Err(Error::Config(_))), "{bad}");
        }
        let err = parse("redis://:hunter2@h:1").unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
