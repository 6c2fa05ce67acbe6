//! A second Docker engine for the tests, so that what they do to an engine (prune its build
//! cache, switch its image store, build on "another machine") never touches the shared one.
//!
//! Its own data root, exec root (so its own managed containerd), socket, a bridge interface of its
//! own and no iptables rules, so it leaves the main engine alone. (`--bridge=none` would not:
//! dockerd then deletes the default `docker0` bridge, cutting the main engine's containers and
//! builds off the network.) Dropping it stops the daemon (which stops its containerd), removes its
//! bridge, its docker context and its files.
//!
//! ```ignore
//! let classic = Engine::classic();        // overlay2 store, unix socket only
//! let remote = Engine::remote();          // containerd store, also on tcp://127.0.0.1:PORT,
//!                                         // with a `docker context` (a buildx builder) for it
//! remote.docker(&["info"]);
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{free_port, run_id, Run};

pub struct Engine {
    dir: PathBuf,
    bridge: String,
    child: Option<Child>,
    /// `unix:///tmp/xtask-…/docker.sock`: a DOCKER_HOST for this engine.
    pub host: String,
    /// `tcp://127.0.0.1:PORT` when the engine also listens on a loopback TCP port.
    pub tcp: Option<String>,
    /// The `docker context` pointing at `tcp` (buildx offers it as a builder of that name).
    pub context: Option<String>,
}

impl Engine {
    /// A dockerd with the classic (overlay2) image store, on a unix socket.
    pub fn classic() -> Engine {
        Engine::start("classic", false, false)
    }

    /// A dockerd with the containerd image store, listening on a unix socket and on a loopback
    /// TCP port, with a `docker context` of its own: "another machine" reachable over TCP.
    pub fn remote() -> Engine {
        Engine::start("remote", true, true)
    }

    fn start(kind: &str, containerd_store: bool, tcp: bool) -> Engine {
        let uid = Command::new("id").arg("-u").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "this test starts a second dockerd and needs root"
        );
        // Several engines of one test process (tests run in parallel) each get their own names.
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        // Short: unix socket paths are limited to 108 bytes and containerd nests its own.
        let dir = PathBuf::from(format!("/tmp/xtask-{kind}-{}-{n}", run_id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("daemon.json");
        std::fs::write(
            &config,
            format!(r#"{{"features":{{"containerd-snapshotter":{containerd_store}}}}}"#),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let host = format!("unix://{}", dir.join("docker.sock").display());
        let tcp = tcp.then(|| format!("tcp://127.0.0.1:{}", free_port()));
        // Interface names are at most 15 bytes: `xt` + 2 + 8 + up to 3.
        let bridge = format!(
            "xt{}{}{}",
            &kind[..2],
            &run_id().rsplit('-').next().unwrap()[..8],
            n % 1000
        );
        // From here on, a panic drops the engine, which removes what exists of it.
        let mut engine = Engine {
            dir: dir.clone(),
            bridge: bridge.clone(),
            child: None,
            host: host.clone(),
            tcp: tcp.clone(),
            context: None,
        };
        let made = Command::new("ip")
            .args(["link", "add", &bridge, "type", "bridge"])
            .status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "cannot create the bridge {bridge} (iproute2 needed)"
        );
        let mut cmd = Command::new("dockerd");
        cmd.arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args(["-H", &host])
            .arg(format!("--bridge={bridge}"))
            .args(["--iptables=false", "--ip6tables=false"]);
        if let Some(tcp) = &tcp {
            // Loopback only. dockerd ≥ 27 refuses an unauthenticated TCP socket unless told.
            cmd.args(["-H", tcp, "--tls=false"]);
        }
        engine.child = Some(
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting dockerd (is it installed?)"),
        );
        let want = if containerd_store {
            "overlayfs"
        } else {
            "overlay2"
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = engine.docker(&["info", "--format", "{{.Driver}}"]);
            if run.code == 0 {
                assert_eq!(run.stdout.trim(), want, "the second engine's store");
                break;
            }
            let exited = engine.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(engine.dir.join("dockerd.log")).unwrap_or_default();
                panic!(
                    "the {kind} dockerd did not come up ({exited:?}):\n{}",
                    log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        if let Some(tcp) = engine.tcp.clone() {
            let name = format!("xtask-{kind}-{}-{n}", run_id());
            let made = Run::of(Command::new("docker").args([
                "context",
                "create",
                &name,
                "--description",
                "second engine of an xtask test run",
                "--docker",
                &format!("host={tcp}"),
            ]));
            assert_eq!(made.code, 0, "docker context create: {}", made.stderr);
            engine.context = Some(name);
        }
        engine
    }

    /// `docker -H <this engine's socket> ARGS`.
    pub fn docker(&self, args: &[&str]) -> Run {
        Run::of(Command::new("docker").args(["-H", &self.host]).args(args))
    }

    /// `docker save TAG | docker -H <this engine> load`.
    pub fn load_from_main(&self, tag: &str) {
        let mut save = Command::new("docker")
            .args(["save", tag])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let load = Command::new("docker")
            .args(["-H", &self.host, "load", "--quiet"])
            .stdin(save.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(save.wait().unwrap().success(), "docker save {tag} failed");
        assert!(
            load.status.success(),
            "docker load into the second engine failed: {}",
            String::from_utf8_lossy(&load.stderr)
        );
    }

    /// Empties this engine's build cache (all of it: it is this test's engine alone).
    pub fn prune_build_cache(&self) {
        self.docker(&["buildx", "prune", "--all", "--force"])
            .assert_ok();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(name) = self.context.take() {
            let _ = Command::new("docker")
                .args(["context", "rm", "--force", &name])
                .output();
        }
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
            }
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        // dockerd bind-mounts its data root onto itself; a daemon that did not shut down cleanly
        // leaves that mount behind, and the directory cannot be removed under it.
        let root = self.dir.join("root");
        if std::fs::read_to_string("/proc/self/mounts")
            .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(1) == root.to_str()))
        {
            let _ = Command::new("umount").arg("--lazy").arg(&root).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
