//! A second Docker engine for the tests, so that what they do to an engine (prune its build
//! cache, switch its image store, build on "another machine") never touches the shared one.
//!
//! The tool's own `LocalEngine` (`src/engine.rs`, which `bench pull` starts too): its own data
//! root, exec root (so its own managed containerd), socket, a bridge interface of its own and no
//! iptables rules, so it leaves the main engine alone. Dropping it stops the daemon (which stops
//! its containerd), removes its bridge, its docker context and its files.
//!
//! ```ignore
//! let classic = Engine::classic();        // overlay2 store, unix socket only
//! let remote = Engine::remote();          // containerd store, also on tcp://127.0.0.1:PORT,
//!                                         // with a `docker context` (a buildx builder) for it
//! remote.docker(&["info"]);
//! ```

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{free_port, run_id, Run};

use xtask::engine as local;

pub struct Engine {
    /// `unix:///tmp/xtask-…/docker.sock`: a DOCKER_HOST for this engine.
    pub host: String,
    /// `tcp://127.0.0.1:PORT` when the engine also listens on a loopback TCP port.
    pub tcp: Option<String>,
    /// The `docker context` pointing at `tcp` (buildx offers it as a builder of that name).
    pub context: Option<String>,
    // Dropped after the context is removed (see Drop).
    engine: local::LocalEngine,
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
        // Interface names are at most 15 bytes: `xt` + 2 + 8 + up to 3.
        let bridge = format!(
            "xt{}{}{}",
            &kind[..2],
            &run_id().rsplit('-').next().unwrap()[..8],
            n % 1000
        );
        let tcp = tcp.then(|| format!("tcp://127.0.0.1:{}", free_port()));
        let engine = local::LocalEngine::start(local::EngineSpec {
            // Short: unix socket paths are limited to 108 bytes and containerd nests its own.
            dir: PathBuf::from(format!("/tmp/xtask-{kind}-{}-{n}", run_id())),
            data_root: None,
            bridge,
            containerd_store,
            tcp: tcp.clone(),
            netns: None,
            insecure_registries: Vec::new(),
        })
        .unwrap_or_else(|e| panic!("the {kind} engine: {e:#}"));
        let mut engine = Engine {
            host: engine.host.clone(),
            tcp,
            context: None,
            engine,
        };
        let run = engine.docker(&["info", "--format", "{{.Driver}}"]);
        let want = if containerd_store {
            "overlayfs"
        } else {
            "overlay2"
        };
        assert_eq!(
            run.stdout.trim(),
            want,
            "the second engine's store: {}",
            run.stderr
        );
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
        // Then `engine` drops: the daemon stops, its bridge and files go.
    }
}
