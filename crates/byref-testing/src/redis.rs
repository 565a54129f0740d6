//! Real `redis-server` processes on loopback, stopped when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`; killed on drop.
#[derive(Debug)]
pub struct Redis {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Killed on drop.
    child: Child,
    /// Its working directory (config, dump files).
    _dir: PathBuf,
}

/// A free loopback port; with `cluster_bus`, one whose port + 10000 (where a cluster node
/// listens for its peers) is free too.
fn free_port(cluster_bus: bool) -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !cluster_bus || (port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok())
        {
            return port;
        }
    }
}

fn wait_ready(port: u16, password: Option<&str>) {
    let started = Instant::now();
    loop {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(p) = password {
            cmd.args(["-a", p, "--no-auth-warning"]);
        }
        let out = cmd
            .arg("PING")
            .output()
            .expect("redis-cli (install redis-tools)");
        if String::from_utf8_lossy(&out.stdout).contains("PONG") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Redis {
    /// Starts a server with `extra` config arguments (e.g. `--requirepass x`).
    pub fn start(extra: &[&str]) -> Redis {
        let port = free_port(extra.contains(&"--cluster-enabled"));
        let dir = std::env::temp_dir().join(format!("byref-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir", dir.to_str().unwrap()])
            .args([
                "--proto-max-bulk-len",
                "1gb",
                "--client-query-buffer-limit",
                "1gb",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "redis-server not found: `make test` installs it (apt-get install redis-server)",
            );
        let password = extra
            .iter()
            .position(|a| *a == "--requirepass")
            .map(|i| extra[i + 1]);
        wait_ready(port, password);
        Redis {
            port,
            child,
            _dir: dir,
        }
    }

    /// The store URL of this server.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs one command with redis-cli; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// A three-node Redis Cluster (no replicas) on loopback.
#[derive(Debug)]
pub struct Cluster {
    /// Its three nodes.
    pub nodes: Vec<Redis>,
}

impl Cluster {
    /// Starts three nodes and joins them.
    pub fn start() -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::start(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let started = Instant::now();
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "cluster did not form"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Cluster { nodes }
    }

    /// The `redis+cluster://` store URL.
    pub fn url(&self) -> String {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", addrs.join(","))
    }
}
