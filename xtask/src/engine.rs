//! A private Docker engine on this machine: a `dockerd` with its own data root, exec root (so its
//! own managed containerd), socket, a bridge interface of its own and no iptables rules, so it
//! leaves the main engine alone. (`--bridge=none` would not: dockerd then deletes the default
//! `docker0` bridge, cutting the main engine's containers and builds off the network.)
//! [`LocalEngine::stop`] (and drop) stops the daemon (which stops its containerd), removes its
//! bridge and its files. Linux only, and root: it is a daemon with its own network interface.
//! [`LocalEngine::start_guarded`] also stops it on a signal (the tool's way); the tests' harness
//! drops it. Used by `bench pull` (a host that holds nothing of the image it pulls; in a network
//! namespace of the bench's when the link to the registry is shaped), by `reproduce` (a build
//! with nothing cached) and by the tests' harness.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cleanup::Guard;
use crate::process::{Child, Cmd};

/// What to start.
pub struct EngineSpec {
    /// Its config, socket, pid file, log and exec root. Keep it short: unix socket paths have at
    /// most 108 bytes, and containerd's socket is nested below the exec root.
    pub dir: PathBuf,
    /// Where its images go (default: `<dir>/root`); made afresh, removed on stop.
    pub data_root: Option<PathBuf>,
    /// Name of its bridge interface (at most 15 bytes), made here and deleted on stop.
    pub bridge: String,
    /// The containerd image store (else the classic overlay2 store).
    pub containerd_store: bool,
    /// Also listen on this `tcp://127.0.0.1:PORT` (plain TCP: loopback only).
    pub tcp: Option<String>,
    /// Run it in this network namespace (`ip netns`), its bridge made there: it reaches only
    /// what that namespace reaches. Its socket is a file, so clients reach it from anywhere.
    pub netns: Option<String>,
    /// Registries (`HOST:PORT` or a CIDR) it pulls from over plain HTTP; 127.0.0.0/8 always is.
    pub insecure_registries: Vec<String>,
}

/// A running engine.
pub struct LocalEngine {
    /// `unix://<dir>/docker.sock`: a DOCKER_HOST for this engine.
    pub host: String,
    dir: PathBuf,
    data_root: PathBuf,
    bridge: String,
    netns: Option<String>,
    child: Mutex<Option<Child>>,
}

impl LocalEngine {
    /// Starts the engine and waits (up to 60 s) until its API answers `/_ping`; dropping it
    /// stops it. Nothing stops it on a signal (see [`LocalEngine::start_guarded`]).
    pub fn start(spec: EngineSpec) -> Result<LocalEngine> {
        let engine = LocalEngine::unstarted(&spec)?;
        // From here on an error drops the engine, which removes what exists of it.
        engine.prepare(&spec)?;
        *lock(&engine.child) = Some(engine.spawn(&spec)?);
        engine.wait_ready()?;
        Ok(engine)
    }

    /// [`LocalEngine::start`] under the cleanup guard: its stop is registered before anything
    /// of it exists, and dockerd is started and recorded as one step, so that a signal at any
    /// moment stops what was started.
    pub fn start_guarded(spec: EngineSpec) -> Result<(Arc<LocalEngine>, Guard)> {
        let engine = Arc::new(LocalEngine::unstarted(&spec)?);
        let stopping = Arc::clone(&engine);
        let guard = Guard::new(move || stopping.stop());
        engine.prepare(&spec)?;
        // No child process may start inside `daemon`'s start (it holds the cleanup lock).
        let (_, _) = crate::process::daemon(
            || {
                *lock(&engine.child) = Some(engine.spawn(&spec)?);
                anyhow::Ok(())
            },
            |_| {},
        )?;
        engine.wait_ready()?;
        Ok((engine, guard))
    }

    /// What the engine will be, nothing of it made yet.
    fn unstarted(spec: &EngineSpec) -> Result<LocalEngine> {
        if !cfg!(target_os = "linux") {
            bail!("a private Docker engine is started on Linux only");
        }
        Ok(LocalEngine {
            host: format!("unix://{}", spec.dir.join("docker.sock").display()),
            dir: spec.dir.clone(),
            data_root: spec
                .data_root
                .clone()
                .unwrap_or_else(|| spec.dir.join("root")),
            bridge: spec.bridge.clone(),
            netns: spec.netns.clone(),
            child: Mutex::new(None),
        })
    }

    /// Its directories (made afresh), its config and its bridge.
    fn prepare(&self, spec: &EngineSpec) -> Result<()> {
        for dir in [&self.dir, &self.data_root] {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating {}", crate::util::shown(dir)))?;
        }
        let config = self.config();
        let daemon_json = serde_json::json!({
            "features": {"containerd-snapshotter": spec.containerd_store},
            "insecure-registries": spec.insecure_registries,
        });
        std::fs::write(&config, daemon_json.to_string())
            .with_context(|| format!("writing {}", crate::util::shown(&config)))?;
        self.ip()
            .args(["link", "add", &self.bridge, "type", "bridge"])
            .run()
            .with_context(|| {
                format!(
                    "cannot create the bridge {} for a private engine (iproute2)",
                    self.bridge
                )
            })
    }

    /// Starts dockerd (it runs no child process of the tool's before it returns).
    fn spawn(&self, spec: &EngineSpec) -> Result<Child> {
        let mut args: Vec<String> = vec![
            "--config-file".into(),
            self.config().display().to_string(),
            "--data-root".into(),
            self.data_root.display().to_string(),
            "--exec-root".into(),
            self.dir.join("exec").display().to_string(),
            "--pidfile".into(),
            self.dir.join("dockerd.pid").display().to_string(),
            "-H".into(),
            self.host.clone(),
            format!("--bridge={}", self.bridge),
            "--iptables=false".into(),
            "--ip6tables=false".into(),
        ];
        if let Some(tcp) = &spec.tcp {
            // Loopback only. dockerd ≥ 27 refuses an unauthenticated TCP socket unless told.
            args.extend(["-H".into(), tcp.clone(), "--tls=false".into()]);
        }
        let dockerd = match &self.netns {
            // nsenter execs dockerd in that namespace alone; `ip netns exec` would also mount a
            // new /sys, hiding the cgroups dockerd needs.
            Some(netns) => Cmd::new("nsenter")
                .arg(format!("--net=/run/netns/{netns}"))
                .arg("dockerd"),
            None => Cmd::new("dockerd"),
        };
        dockerd
            .args(&args)
            .grace(Duration::from_secs(30))
            .spawn_daemon(&self.log())
            .context("starting dockerd (install docker.io)")
    }

    /// Waits (up to 60 s) until the API answers `/_ping`.
    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.ping() {
                return Ok(());
            }
            let exited = lock(&self.child).as_ref().is_none_or(Child::exited);
            if exited || Instant::now() > deadline {
                bail!(
                    "the private dockerd did not come up ({}):\n{}",
                    if exited { "it exited" } else { "60 s" },
                    self.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `ip`, in the engine's network namespace.
    fn ip(&self) -> Cmd {
        match &self.netns {
            Some(netns) => Cmd::new("ip").args(["-n", netns]),
            None => Cmd::new("ip"),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// True when the API answers `GET /_ping` with `OK`.
    #[cfg(unix)]
    pub(crate) fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::os::unix::net::UnixStream::connect(self.dir.join("docker.sock"))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut raw = Vec::new();
        stream
            .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            .and_then(|()| stream.read_to_end(&mut raw))
            .is_ok()
            && raw.starts_with(b"HTTP/1.")
            && raw.ends_with(b"\r\n\r\nOK")
    }

    #[cfg(not(unix))]
    pub(crate) fn ping(&self) -> bool {
        false
    }

    /// Stops the daemon (SIGTERM, so that it stops its containerd; SIGKILL after 30 s), deletes
    /// its bridge and removes its files. Again: nothing.
    pub(crate) fn stop(&self) {
        if let Some(child) = lock(&self.child).take() {
            child.stop();
        }
        let _ = self.ip().args(["link", "del", &self.bridge]).run();
        let _ = remove_dirs(&self.dir, &self.data_root);
    }
}

impl Drop for LocalEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes the engine's directories. dockerd bind-mounts its data root onto itself; a daemon
/// that did not shut down cleanly leaves that mount behind, and the directory cannot be removed
/// under it.
fn remove_dirs(dir: &Path, data_root: &Path) -> std::io::Result<()> {
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(1) == data_root.to_str()));
    if mounted {
        let _ = Cmd::new("umount").arg("--lazy").arg(data_root).run();
    }
    let _ = std::fs::remove_dir_all(data_root);
    std::fs::remove_dir_all(dir)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
