//! The timed pulls: each on a private engine started for it alone (containerd image store, empty
//! data root), so nothing of the image is there before — on the shared engine every layer of a
//! built image "Already exists" and a pull takes 0.1 s. The pull is timed from the start of
//! `docker pull` to its exit: manifests, downloads from the registry (on 127.0.0.1, or through
//! the shaped link and its proxy) and unpacking into the snapshotter. The engine is stopped and
//! its files removed after each pull, and on every other path.

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

use super::ledger::Ledger;
use super::link::Link;
use super::network::Network;
use super::proxy::{Proxy, Shape};
use xtask::cleanup::Guard;
use xtask::docker;
use xtask::engine::{EngineSpec, LocalEngine};
use xtask::output::progress;
use xtask::registry::serve::LocalRegistry;

/// One pull.
#[derive(Debug, Clone, Serialize)]
pub struct PullRun {
    /// `docker pull`, start to exit.
    pub secs: f64,
    /// When the last layer's download was complete (from the pull's progress).
    pub downloaded_secs: Option<f64>,
    /// Layers the fresh engine said it already had (must be none).
    pub already_there: usize,
    /// The diff IDs the engine stored.
    pub stored: Vec<String>,
    /// Through the shaped link: the connections the pull opened, and the most that carried
    /// bytes at once.
    pub connections: Option<usize>,
    pub most_busy: Option<usize>,
}

/// The shaped link the engines pull through, and its setting.
pub struct Shaped<'a> {
    pub link: &'a Link,
    pub network: &'a Network,
}

impl Shaped<'_> {
    /// A proxy on the link's host end in front of `registry`, shaping as the setting says.
    pub fn proxy(&self, registry: &LocalRegistry) -> Result<Proxy> {
        let upstream = registry.host.parse().context("the registry's address")?;
        let shape = Shape {
            latency: self.network.latency(),
            per_connection: self.network.per_connection_bytes(),
        };
        Proxy::start(self.link.host_ip.into(), upstream, shape)
    }
}

/// `reference` (`127.0.0.1:PORT/repo:tag`) as pulled through `proxy`.
pub fn via(proxy: &Proxy, reference: &str) -> String {
    let path = reference.split_once('/').map_or(reference, |(_, p)| p);
    format!("{}/{path}", proxy.addr)
}

/// Where the private engines live: sockets under the system's temp dir (short paths), images
/// under `data` (the workspace's disk, as big as the image).
pub struct Engines<'a> {
    pub data: &'a Utf8Path,
    pub count: usize,
    /// Where each engine's directory is written down before it is made.
    pub ledger: &'a Ledger,
    /// The link they pull through, if shaped (they run in its namespace).
    pub shaped: Option<Shaped<'a>>,
}

impl Engines<'_> {
    fn start(&mut self) -> Result<(Arc<LocalEngine>, Guard)> {
        let n = self.count;
        self.count += 1;
        let pid = std::process::id();
        let spec = EngineSpec {
            dir: std::env::temp_dir().join(format!("xtask-pull-{pid}-{n}")),
            data_root: Some(self.data.join(format!("engine-{n}")).into()),
            // At most 15 bytes: 4 + 6 hex digits of a Linux PID + up to 3.
            bridge: format!("xtpl{pid:x}{}", n % 1000),
            containerd_store: true,
            tcp: None,
            netns: self.shaped.as_ref().map(|s| s.link.netns.clone()),
            insecure_registries: self.shaped.iter().map(|s| s.link.subnet.clone()).collect(),
        };
        self.ledger.dir(&spec.dir)?;
        LocalEngine::start_guarded(spec).context("starting a private engine to pull into")
    }

    /// Pulls `reference` on a fresh engine (through `proxy`, when shaped) and returns what it
    /// took and stored.
    pub fn pull(&mut self, reference: &str, proxy: Option<&Proxy>, what: &str) -> Result<PullRun> {
        let (engine, _guard) = self.start()?;
        let reference = &proxy.map_or_else(|| reference.to_string(), |p| via(p, reference));
        if let Some(proxy) = proxy {
            // Counted from here: this pull's connections only.
            proxy.take_counts();
        }
        progress!("bench pull: {what}: docker pull on a fresh engine");
        let started = Instant::now();
        let mut downloaded = None;
        let mut already_there = 0;
        let mut tail: Vec<String> = Vec::new();
        let status = docker::pull_on(&engine.host, reference, &mut |line| {
            if line.ends_with(": Download complete") {
                downloaded = Some(started.elapsed().as_secs_f64());
            }
            if line.ends_with(": Already exists") {
                already_there += 1;
            }
            tail.push(line.to_string());
        })?;
        let secs = started.elapsed().as_secs_f64();
        if !status.success() {
            bail!(
                "`docker pull {reference}` on the private engine failed:\n{}\n{}",
                tail.join("\n"),
                engine.log_tail(10)
            );
        }
        let counts = proxy.map(Proxy::take_counts);
        let stored = docker::layers_on(&engine.host, reference)?;
        Ok(PullRun {
            secs,
            downloaded_secs: downloaded,
            already_there,
            stored,
            connections: counts.map(|c| c.connections),
            most_busy: counts.map(|c| c.most_busy),
        })
    }
}
