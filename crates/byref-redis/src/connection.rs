//! One pooled, reconnecting connection per store: a `ConnectionManager` for a single server,
//! a `ClusterConnection` for Redis Cluster. Both multiplex many requests over few sockets.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value};

use crate::config::Config;

/// A live connection of either kind; cheap to clone (clones share the sockets).
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// rediss:// needs a rustls crypto provider installed for the process. aws-lc-rs is the one
/// byref uses everywhere (object_store's HTTP client and quinn use it too); installing fails
/// harmlessly if one is already there.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The CAs to trust for `rediss://`, when the user named some.
fn certificates(config: &Config) -> Option<TlsCertificates> {
    config.ca.as_ref().map(|ca| TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.clone()),
    })
}

impl Connection {
    pub(crate) async fn open(config: &Config) -> RedisResult<Self> {
        install_crypto_provider();
        if config.cluster {
            let mut builder = ClusterClientBuilder::new(config.nodes.clone())
                .connection_timeout(config.connect_timeout)
                // Per-request deadlines are ours (scaled by size); this is only a backstop.
                .response_timeout(config.deadline(u64::from(u32::MAX)))
                .retries(2);
            if let Some(user) = &config.username {
                builder = builder.username(user);
            }
            if let Some(password) = &config.password {
                builder = builder.password(password);
            }
            if let Some(certificates) = certificates(config) {
                builder = builder.certs(certificates);
            }
            let client = builder.build()?;
            return Ok(Connection::Cluster(client.get_async_connection().await?));
        }
        let mut info = config.nodes[0].as_str().into_connection_info()?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &config.password {
            settings = settings.set_password(password);
        }
        info = info.set_redis_settings(settings);
        let client = match certificates(config) {
            Some(certificates) => redis::Client::build_with_tls(info, certificates)?,
            None => redis::Client::open(info)?,
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            // The crate's default 500 ms would fail any large transfer; deadlines are ours.
            .set_response_timeout(None)
            .set_number_of_retries(1);
        Ok(Connection::Single(
            client
                .get_connection_manager_with_config(manager_config)
                .await?,
        ))
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
