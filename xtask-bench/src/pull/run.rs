//! The timed pulls: each on a private engine started for it alone (containerd image store, empty
//! data root), so nothing of the image is there before — on the shared engine every layer of a
//! built image "Already exists" and a pull takes 0.1 s. The pull is timed from the start of
//! `docker pull` to its exit: manifests, downloads from the registry on 127.0.0.1 and unpacking
//! into the snapshotter. The engine is stopped and its files removed after each pull, and on
//! every other path.

use anyhow::{bail, Context, Result};
use camino::Utf8Path;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

use xtask::cleanup::Guard;
use xtask::docker;
use xtask::engine::{EngineSpec, LocalEngine};
use xtask::output::progress;

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
}

/// Where the private engines live: sockets under the system's temp dir (short paths), images
/// under `data` (the workspace's disk, as big as the image).
pub struct Engines<'a> {
    pub data: &'a Utf8Path,
    pub count: usize,
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
        };
        LocalEngine::start_guarded(spec).context("starting a private engine to pull into")
    }

    /// Pulls `reference` on a fresh engine and returns what it took and stored.
    pub fn pull(&mut self, reference: &str, what: &str) -> Result<PullRun> {
        let (engine, _guard) = self.start()?;
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
        let stored = docker::layers_on(&engine.host, reference)?;
        Ok(PullRun {
            secs,
            downloaded_secs: downloaded,
            already_there,
            stored,
        })
    }
}
