//! A real registry for tests: Debian's `docker-registry` (distribution 2.8)
//! on a free 127.0.0.1 port with its own storage, killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the test registry is set up.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// HTTP Basic auth with this user and password (htpasswd, bcrypt).
    pub basic_auth: Option<(String, String)>,
    /// `storage.delete.enabled: false`.
    pub deletes_disabled: bool,
    /// Serve HTTPS with this PEM certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// A running `docker-registry serve`.
pub struct TestRegistry {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl TestRegistry {
    /// An open registry with deletes enabled.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(RegistryOptions::default())
    }

    pub fn start_with(opts: RegistryOptions) -> TestRegistry {
        require_tool(
            "docker-registry",
            "install docker-registry (apt-get install docker-registry)",
        );
        let dir = tempfile::tempdir().expect("temp dir for the registry");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("registry storage dir");
        let mut auth = String::new();
        if let Some((user, pass)) = &opts.basic_auth {
            require_tool(
                "htpasswd",
                "install apache2-utils (apt-get install apache2-utils)",
            );
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("run htpasswd");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: boxwright-test\n    path: {}\n",
                file.display()
            );
        }
        let tls = match &opts.tls {
            Some((cert, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        // Ports can be taken between probing and binding; retry a few times.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {}\n  cache:\n    blobdescriptor: inmemory\n{auth}http:\n  addr: 127.0.0.1:{port}\n{tls}",
                storage.display(),
                !opts.deletes_disabled
            );
            let cfg_path = dir.path().join("config.yml");
            std::fs::write(&cfg_path, config).expect("write registry config");
            let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let mut child = child;
            if wait_ready(&mut child, port, Duration::from_secs(10)) {
                return TestRegistry { port, dir, child };
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
            assert!(
                log.contains("address already in use"),
                "docker-registry did not become ready; its log:\n{log}"
            );
        }
        panic!("docker-registry found no free port in 5 tries");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log (access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

fn wait_ready(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        // 400: an HTTPS registry refusing plain HTTP is up too.
        if let Some(status) = http_status(port, "/v2/")
            && (status == 200 || status == 401 || status == 400)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("probe a free port")
}

/// The status of a plain `GET path` on 127.0.0.1:port, if it answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Fails the test, saying how to install `tool`, when it is missing.
pub fn require_tool(tool: &str, how: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| is_executable(&d.join(tool))))
        .unwrap_or(false);
    assert!(found, "{tool} not found: {how}");
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
