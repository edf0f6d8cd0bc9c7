//! A throwaway PostgreSQL for tests: one private cluster per test process,
//! made with Debian's binaries (`initdb`, `postgres`) in a temporary
//! directory, listening on a free loopback port, and each test in a schema
//! of its own. A watchdog shell stops the server and removes the directory
//! once the test process has gone, however it ended.
//!
//! Where the binaries are missing, `tests/pg/setup.sh` installs Debian's
//! package. Where that is impossible (no root, no sudo), [`Database::fresh`]
//! answers `None` and the test prints why it is skipped; under `CI=true`
//! that is a failure instead, so CI never passes by skipping.
#![allow(clippy::print_stderr, clippy::expect_used)] // test support: says why a test is skipped

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The running cluster: where to connect, and the CA that signed its TLS
/// certificate (none where `openssl` is missing: then it has no TLS).
struct Cluster {
    port: u16,
    ca: Option<PathBuf>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static SCHEMAS: AtomicU32 = AtomicU32::new(0);

/// An empty schema in the test cluster, for one test.
pub struct Database {
    url: String,
    /// The URL of the cluster's database without a schema (for tools that
    /// manage schemas, like a second store on the same database).
    base: String,
    pub schema: String,
    port: u16,
    ca: Option<PathBuf>,
}

impl Database {
    /// A fresh schema, or `None` (with the reason printed) where PostgreSQL
    /// cannot be had on this machine.
    pub async fn fresh() -> Option<Database> {
        let cluster = tokio::task::spawn_blocking(|| {
            CLUSTER
                .get_or_init(start)
                .as_ref()
                .map(|c| (c.port, c.ca.clone()))
                .map_err(Clone::clone)
        })
        .await
        .expect("starting the test cluster");
        let (port, ca) = match cluster {
            Ok(found) => found,
            Err(reason) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("PostgreSQL is needed under CI=true: {reason}");
                }
                eprintln!("skipped: no PostgreSQL for this test ({reason})");
                return None;
            }
        };
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        let schema = format!("t{}_{n}", std::process::id());
        // Plain text: the cluster's certificate is trusted only by the TLS test.
        let base = format!("postgres://steward@127.0.0.1:{port}/postgres?sslmode=disable");
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connecting to the test cluster");
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("creating a test schema");
        drop(client);
        let _ = driver.await;
        let url = format!("{base}&options=-c%20search_path%3D{schema}");
        Some(Database {
            url,
            base,
            schema,
            port,
            ca,
        })
    }

    /// This test's schema over TLS (`sslmode=require`) and the CA file to
    /// trust for it; `None` where the cluster has no TLS (no `openssl`).
    pub fn tls(&self) -> Option<(String, PathBuf)> {
        let ca = self.ca.clone()?;
        let url = format!(
            "postgres://steward@127.0.0.1:{}/postgres?sslmode=require&options=-c%20search_path%3D{}",
            self.port, self.schema
        );
        Some((url, ca))
    }

    /// A store on this test's schema, with the default options.
    pub async fn store(&self) -> super::PostgresStore {
        super::PostgresStore::connect(&self.url, &super::PostgresOptions::default())
            .await
            .expect("connecting a store to the test schema")
    }

    /// The connection string: the cluster's database, this test's schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The cluster's database, no schema chosen.
    pub fn base_url(&self) -> &str {
        &self.base
    }
}

/// The directory of Debian's server binaries (the newest version).
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the `postgres` user when we are root (the server
/// refuses to run as root).
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`,
/// made with `openssl` as the server's user (the key must be its own);
/// the CA certificate's path, or `None` (said why) without `openssl`.
fn certificates(dir: &Path, root: bool) -> Option<PathBuf> {
    let script = "set -e
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
            -subj /CN=steward-test-ca -keyout ca.key -out ca.crt
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj /CN=127.0.0.1 -keyout server.key -out server.csr
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3 \
            -extfile server.ext -out server.crt
        chmod 600 server.key";
    let made = as_server_user(Path::new("sh"), root)
        .args(["-c", script])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match made {
        Ok(out) if out.status.success() => Some(dir.join("ca.crt")),
        Ok(out) => {
            eprintln!(
                "the test cluster runs without TLS: openssl failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("the test cluster runs without TLS: {e}");
            None
        }
    }
}

// Long: the steps of bringing up a cluster, each with its own reason to
// fail, read best top to bottom.
fn start() -> Result<Cluster, String> {
    let openssl = Command::new("openssl").arg("version").output().is_ok();
    let bin = match binaries().filter(|_| openssl) {
        Some(bin) => bin,
        None => {
            let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pg/setup.sh");
            let status = Command::new("bash")
                .arg(&setup)
                .status()
                .map_err(|e| format!("running {}: {e}", setup.display()))?;
            if !status.success() {
                return Err(format!("{} could not install PostgreSQL", setup.display()));
            }
            binaries().ok_or("PostgreSQL's binaries are not under /usr/lib/postgresql")?
        }
    };
    let root = is_root();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("steward-pg-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if root {
        let chown = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| format!("chown: {e}"))?;
        if !chown.success() {
            return Err("the postgres user is missing (Debian's package creates it)".into());
        }
    }
    let data = dir.join("data");
    let init = as_server_user(&bin.join("initdb"), root)
        .arg("-D")
        .arg(&data)
        .args(["-U", "steward", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !init.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        ));
    }
    let port = free_port()?;
    let ca = certificates(&dir, root);
    let ssl = match &ca {
        Some(_) => format!(
            "-c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
            dir = dir.display()
        ),
        None => String::new(),
    };
    // The watchdog: runs the server, and stops it and removes the directory
    // once this process is gone.
    let script = format!(
        "{postgres} -D {data} -p {port} -c listen_addresses=127.0.0.1 -k {dir} -c max_connections=200 {ssl} > {dir}/log 2>&1 &
         server=$!
         while [ -d /proc/{parent} ] && kill -0 $server 2> /dev/null; do sleep 1; done
         kill -INT $server 2> /dev/null; wait $server; rm -rf {dir}",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        parent = std::process::id(),
    );
    as_server_user(Path::new("sh"), root)
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "steward", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(Cluster { port, ca });
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    Err(format!("postgres did not start within 30 s: {}", log.trim()))
}
