//! What a run of `bench pull` makes that would outlive a `kill -9` — its directories, its network
//! namespace, and so the daemons started in or from them — written down before it is made, in a
//! file of the run's own (`<temp dir>/xtask-bench-pull/<pid>.json`, so that every checkout's
//! runs see it). The cleanup guards remove all of it on every other path; the next run, before
//! it starts anything, removes what runs that are gone left ([`repair`]) and says so.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use xtask::cleanup::Guard;
use xtask::output::progress;
use xtask::process::{stop_left_behind, Cmd};
use xtask::reclaim::Owner;
use xtask::util::shown;

/// How long left-behind daemons get to stop (dockerd stops its containerd) before SIGKILL.
const GRACE: Duration = Duration::from_secs(30);

/// A run's file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    owner: Owner,
    /// Directories it makes (and daemons it starts name in their command lines).
    dirs: Vec<PathBuf>,
    /// Network namespaces it makes.
    netns: Vec<String>,
}

/// This run's file; removed when dropped (after everything it lists: make it first).
pub struct Ledger {
    path: PathBuf,
    record: Mutex<Record>,
    _guard: Guard,
}

fn ledger_dir() -> PathBuf {
    std::env::temp_dir().join("xtask-bench-pull")
}

impl Ledger {
    pub fn open() -> Result<Ledger> {
        let dir = ledger_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", shown(&dir)))?;
        let path = dir.join(format!("{}.json", std::process::id()));
        let remove = path.clone();
        let ledger = Ledger {
            _guard: Guard::new(move || {
                let _ = std::fs::remove_file(&remove);
            }),
            path,
            record: Mutex::new(Record {
                owner: Owner::current().clone(),
                dirs: Vec::new(),
                netns: Vec::new(),
            }),
        };
        ledger.write(&lock(&ledger.record))?;
        Ok(ledger)
    }

    /// Writes down a directory about to be made.
    pub fn dir(&self, dir: &Path) -> Result<()> {
        let mut record = lock(&self.record);
        record.dirs.push(dir.to_path_buf());
        self.write(&record)
    }

    /// Writes down a network namespace about to be made.
    pub fn netns(&self, name: &str) -> Result<()> {
        let mut record = lock(&self.record);
        record.netns.push(name.to_string());
        self.write(&record)
    }

    fn write(&self, record: &Record) -> Result<()> {
        let text = serde_json::to_string_pretty(record).context("writing the run's record")?;
        let partial = self.path.with_extension("json.new");
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &self.path))
            .with_context(|| format!("writing {}", shown(&self.path)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes what runs of `bench pull` that are gone (killed before they could clean up) left,
/// and says what; runs still alive, and other hosts' runs, are left alone.
pub fn repair() -> Result<()> {
    let Ok(entries) = std::fs::read_dir(ledger_dir()) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        else {
            continue;
        };
        if !record.owner.gone() {
            continue;
        }
        let done = remove(&record);
        std::fs::remove_file(&path).with_context(|| format!("removing {}", shown(&path)))?;
        progress!(
            "repaired what a killed `bench pull` (pid {}) left: {}",
            record.owner.pid,
            if done.is_empty() {
                "nothing was left".to_string()
            } else {
                done.join("; ")
            }
        );
    }
    Ok(())
}

/// Removes what a record lists: its daemons, then its namespaces, mounts and directories;
/// returns what it did, one phrase each.
fn remove(record: &Record) -> Vec<String> {
    let mut done = Vec::new();
    let processes = left_behind(record);
    if !processes.is_empty() {
        let groups: Vec<u32> = processes.iter().map(|p| p.group).collect();
        stop_left_behind(&groups, GRACE);
        let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
        done.push(format!("stopped {}", names.join(", ")));
    }
    for name in &record.netns {
        if Cmd::new("ip").args(["netns", "del", name]).run().is_ok() {
            done.push(format!(
                "deleted network namespace {name} (its link with it)"
            ));
        }
    }
    for dir in &record.dirs {
        for mount in mounts_under(dir) {
            let _ = Cmd::new("umount").arg("--lazy").arg(&mount).run();
        }
        if dir.exists() && std::fs::remove_dir_all(dir).is_ok() {
            done.push(format!("removed {}", shown(dir)));
        }
    }
    done
}

/// A process a record's run left.
struct LeftBehind {
    name: String,
    /// Its process group.
    group: u32,
}

/// The processes that name one of the record's directories in their command line, or run in
/// one of its network namespaces.
fn left_behind(record: &Record) -> Vec<LeftBehind> {
    let in_netns: Vec<u32> = record
        .netns
        .iter()
        .filter_map(|n| Cmd::new("ip").args(["netns", "pids", n]).read().ok())
        .flat_map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| in_netns.contains(pid) || names_a_dir(*pid, &record.dirs))
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let group = rest.split_whitespace().nth(2)?.parse().ok()?;
            Some(LeftBehind { name, group })
        })
        .collect()
}

fn names_a_dir(pid: u32, dirs: &[PathBuf]) -> bool {
    let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let line = String::from_utf8_lossy(&line);
    dirs.iter()
        .any(|d| line.contains(d.to_string_lossy().as_ref()))
}

/// Mount points at or below `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}
