//! Stale resources: containers (and test fixture images) whose owning process is gone.
//!
//! A `cargo xtask` killed with SIGKILL runs no cleanup, so what it started would stay forever.
//! Every smoke container therefore carries its owner — host, pid and the process's start time —
//! as labels (the test harness labels its fixture images the same way), and every command that
//! starts containers first removes those whose owner is gone: same host, and the pid no longer
//! alive, or alive with another start time (the pid was reused). Resources of other hosts (a
//! shared engine) and of live owners are never touched. The images a bench builds carry the same
//! labels, and a temporary directory names its owner's pid: the next bench removes those of a
//! bench that was killed. (`bench pull` also writes its owner into a file of its own for what is
//! not a container or a directory: [`Owner::gone`].)

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::ctx::Ctx;
use crate::docker;
use crate::process::Cmd;
use crate::util::{host_join, progress, shown};

pub(crate) const OWNER_HOST: &str = "voxserve.xtask.owner.host";
pub(crate) const OWNER_PID: &str = "voxserve.xtask.owner.pid";
pub(crate) const OWNER_STARTED: &str = "voxserve.xtask.owner.started";
/// The label the test harness puts on fixture images (its value is the test run's ID).
pub(crate) const TEST_LABEL: &str = "voxserve.xtask.test";
/// The label on the images the benches build (with their owner's labels).
pub(crate) const BENCH_LABEL: &str = "voxserve.xtask.bench";

/// The process a resource belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub(crate) host: String,
    pub pid: u32,
    /// An opaque start time (Linux: boot ID and start tick); None where it cannot be read.
    pub(crate) started: Option<String>,
}

/// What this host says about a pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Process {
    Gone,
    Alive { started: Option<String> },
}

impl Owner {
    /// This process, as owner.
    pub fn current() -> &'static Owner {
        static OWNER: OnceLock<Owner> = OnceLock::new();
        OWNER.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                host: hostname(),
                pid,
                started: match probe(pid) {
                    Process::Alive { started } => started,
                    Process::Gone => None,
                },
            }
        })
    }

    /// `KEY=VALUE` labels naming this owner.
    pub(crate) fn labels(&self) -> Vec<String> {
        let mut labels = vec![
            format!("{OWNER_HOST}={}", self.host),
            format!("{OWNER_PID}={}", self.pid),
        ];
        if let Some(started) = &self.started {
            labels.push(format!("{OWNER_STARTED}={started}"));
        }
        labels
    }

    /// The owner named by a resource's labels; None when it names none.
    pub(crate) fn from_labels(labels: &BTreeMap<String, String>) -> Option<Owner> {
        Some(Owner {
            host: labels.get(OWNER_HOST)?.clone(),
            pid: labels.get(OWNER_PID)?.parse().ok()?,
            started: labels.get(OWNER_STARTED).cloned(),
        })
    }

    /// True when this owner is known to be gone: a process of this host that has ended.
    pub fn gone(&self) -> bool {
        self.is_gone(&Owner::current().host, probe)
    }

    /// True when this owner is known to be gone: on `host`, and its pid not alive or alive with
    /// another start time. Unknown start times count as the same process (never reclaim a
    /// resource that may still be in use).
    pub(crate) fn is_gone(&self, host: &str, probe: impl FnOnce(u32) -> Process) -> bool {
        if self.host != host {
            return false;
        }
        match probe(self.pid) {
            Process::Gone => true,
            Process::Alive { started } => match (&self.started, started) {
                (Some(was), Some(now)) => *was != now,
                _ => false,
            },
        }
    }
}

/// The host's name, as the owner labels name it.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| Cmd::new("hostname").read().ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    match name.trim() {
        "" => "unknown".to_string(),
        name => name.to_string(),
    }
}

/// Whether `pid` runs on this host, and since when.
#[cfg(target_os = "linux")]
fn probe(pid: u32) -> Process {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has ended; where PID 1 reaps no orphans it stays in /proc for ever.
        Ok(stat) if linux_state(&stat) == Some("Z") => Process::Gone,
        Ok(stat) => Process::Alive {
            started: linux_start_tick(&stat).map(|tick| {
                let boot =
                    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
                format!("{}/{tick}", boot.trim())
            }),
        },
        Err(_) => Process::Gone,
    }
}

/// Whether `pid` runs on this host, and since when (`ps -o lstart=`).
#[cfg(all(unix, not(target_os = "linux")))]
fn probe(pid: u32) -> Process {
    let pid = pid.to_string();
    match Cmd::new("ps").args(["-o", "lstart=", "-p"]).arg(pid).read() {
        Ok(started) if !started.trim().is_empty() => Process::Alive {
            started: Some(started.trim().to_string()),
        },
        _ => Process::Gone,
    }
}

/// Whether `pid` runs on this host (`tasklist`; the start time is not read on Windows).
#[cfg(windows)]
fn probe(pid: u32) -> Process {
    let filter = format!("PID eq {pid}");
    match Cmd::new("tasklist")
        .arg("/FI")
        .arg(filter)
        .args(["/NH", "/FO", "CSV"])
        .read()
    {
        Ok(out) if out.contains(&format!("\"{pid}\"")) => Process::Alive { started: None },
        Ok(_) => Process::Gone,
        // tasklist could not tell: count it alive.
        Err(_) => Process::Alive { started: None },
    }
}

/// The state field of `/proc/PID/stat` (`R`, `S`, `Z`…), after the command name.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn linux_state(stat: &str) -> Option<&str> {
    stat.rsplit_once(')')?.1.split_whitespace().next()
}

/// The start time field of `/proc/PID/stat` (the 22nd; the command name before it may hold
/// spaces and parentheses, so fields are counted after its closing parenthesis).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn linux_start_tick(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Removes the containers whose owner is gone and says how many, on stderr. Every command that
/// starts containers calls this first.
pub(crate) fn stale_containers() -> Result<usize> {
    // After a signal, what is left is the next run's to reclaim.
    if crate::output::interrupted() {
        return Ok(0);
    }
    let owner = Owner::current();
    let stale: Vec<docker::ContainerFacts> = docker::containers_labelled(OWNER_PID)
        .context("listing containers that name an owner")?
        .into_iter()
        .filter(|c| Owner::from_labels(&c.labels).is_some_and(|o| o.is_gone(&owner.host, probe)))
        .collect();
    for c in &stale {
        docker::remove_container(&c.id)?;
    }
    if !stale.is_empty() {
        let names: Vec<&str> = stale.iter().map(|c| c.name.as_str()).collect();
        progress!(
            "removed {} stale container{} whose xtask is gone (killed before it could clean up): {}",
            stale.len(),
            if stale.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
    }
    Ok(stale.len())
}

/// Removes the test fixture images whose owner (a test process) is gone and says how many.
pub(crate) fn stale_test_images() -> Result<usize> {
    // After a signal, what is left is the next run's to reclaim.
    if crate::output::interrupted() {
        return Ok(0);
    }
    let removed = stale_images(TEST_LABEL).context("listing test fixture images")?;
    if !removed.is_empty() {
        progress!(
            "removed {} stale test image{} whose test process is gone: {}",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            removed.join(", ")
        );
    }
    Ok(removed.len())
}

/// The labels of an image a bench builds: [`BENCH_LABEL`] and this process as its owner, so that
/// the next bench finds what a killed one built.
pub fn bench_image_labels() -> Vec<String> {
    let mut labels = vec![format!("{BENCH_LABEL}=1")];
    labels.extend(Owner::current().labels());
    labels
}

/// Removes what killed runs left — the temporary directories under `target/xtask/tmp` and the
/// benches' images whose owner is gone — and says what, in one line. Every bench calls this first.
pub fn stale_bench_leftovers(ctx: &Ctx) -> Result<()> {
    // After a signal, what is left is the next run's to reclaim.
    if crate::output::interrupted() {
        return Ok(());
    }
    let dirs = stale_temp_dirs(&host_join(&ctx.out_dir(), "tmp"))?;
    // No engine answering, no image of it to reclaim: the bench's own checks say what is wrong.
    let images = match docker::versions() {
        Ok(_) => stale_images(BENCH_LABEL).context("listing the benches' images")?,
        Err(_) => Vec::new(),
    };
    if dirs.is_empty() && images.is_empty() {
        return Ok(());
    }
    let mut what = Vec::new();
    if !dirs.is_empty() {
        let shown: Vec<String> = dirs.iter().map(shown).collect();
        what.push(format!(
            "{} ({})",
            count(dirs.len(), "temporary dir"),
            shown.join(", ")
        ));
    }
    if !images.is_empty() {
        let shown: Vec<String> = images.iter().map(|i| short_ref(i)).collect();
        what.push(format!(
            "{} ({})",
            count(images.len(), "bench image"),
            shown.join(", ")
        ));
    }
    crate::output::notice(format_args!(
        "==> removed what a killed run left (its process is gone): {}",
        what.join("; ")
    ));
    Ok(())
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// An image as the notice names it: its tag, or its short ID.
fn short_ref(image: &str) -> String {
    match image.starts_with("sha256:") {
        true => crate::util::short_id(image),
        false => image.to_string(),
    }
}

/// Removes the images labelled `label` whose owner is gone; returns what it removed (their tags,
/// or the IDs of untagged ones).
fn stale_images(label: &str) -> Result<Vec<String>> {
    let owner = Owner::current();
    let mut removed = Vec::new();
    for image in docker::images_labelled(&[label, OWNER_PID])? {
        let labels = image.config.labels.clone().unwrap_or_default();
        let gone = Owner::from_labels(&labels).is_some_and(|o| o.is_gone(&owner.host, probe));
        if !gone {
            continue;
        }
        // By tag, so that only these names go (an ID would take every tag of the image).
        let refs = if image.repo_tags.is_empty() {
            vec![image.id.clone()]
        } else {
            image.repo_tags.clone()
        };
        docker::remove_images(&refs)?;
        removed.extend(refs);
    }
    Ok(removed)
}

/// Removes the directories of `tmp` whose owner is gone: a [`crate::ctx::TempDir`] is named
/// `PREFIX-PID-SUFFIX`, and the pid no longer alive on this host (an alive one may still use it).
fn stale_temp_dirs(tmp: &Utf8Path) -> Result<Vec<Utf8PathBuf>> {
    let entries = match std::fs::read_dir(tmp) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(err) => return Err(err).with_context(|| format!("reading {}", shown(tmp))),
    };
    let owner = Owner::current();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_dir_pid(&name) else {
            continue;
        };
        let dir = Owner {
            host: owner.host.clone(),
            pid,
            started: None,
        };
        if pid == owner.pid || !dir.is_gone(&owner.host, probe) {
            continue;
        }
        let path = host_join(tmp, &name);
        std::fs::remove_dir_all(&path).with_context(|| format!("removing {}", shown(&path)))?;
        removed.push(path);
    }
    removed.sort();
    Ok(removed)
}

/// The pid in a temporary directory's name, `PREFIX-PID-SUFFIX` (see
/// [`crate::util::unique_suffix`]), where SUFFIX is eight hex digits.
fn temp_dir_pid(name: &str) -> Option<u32> {
    let (rest, suffix) = name.rsplit_once('-')?;
    let (_, pid) = rest.rsplit_once('-')?;
    let hex = suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| pid.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(host: &str, pid: u32, started: Option<&str>) -> Owner {
        Owner {
            host: host.into(),
            pid,
            started: started.map(str::to_owned),
        }
    }

    fn alive(started: Option<&str>) -> impl FnOnce(u32) -> Process {
        let started = started.map(str::to_owned);
        move |_| Process::Alive { started }
    }

    #[test]
    fn an_owner_is_gone_when_its_pid_is_dead_or_was_reused_on_this_host() {
        let o = owner("h", 42, Some("b/100"));
        assert!(o.is_gone("h", |_| Process::Gone));
        assert!(o.is_gone("h", alive(Some("b/200"))), "pid reused");
        assert!(!o.is_gone("h", alive(Some("b/100"))));
        // Unknown start times: the same process, as far as anyone can tell.
        assert!(!o.is_gone("h", alive(None)));
        assert!(!owner("h", 42, None).is_gone("h", alive(Some("b/1"))));
        // Another host's resources are never judged here.
        assert!(!o.is_gone("other", |_| Process::Gone));
    }

    #[test]
    fn owner_labels_round_trip() {
        let o = owner("build-7", 4242, Some("boot/123"));
        let labels: BTreeMap<String, String> = o
            .labels()
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        assert_eq!(labels[OWNER_PID], "4242");
        assert_eq!(Owner::from_labels(&labels), Some(o));
        assert_eq!(Owner::from_labels(&BTreeMap::new()), None);
    }

    #[test]
    fn the_start_tick_is_read_after_the_command_name() {
        // pid (comm) state ppid … field 22 is the start time; comm may hold ") (".
        let stat = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 200 18446744073709551615";
        assert_eq!(linux_start_tick(stat), Some(987_654));
        assert_eq!(linux_state(stat), Some("S"));
        assert_eq!(linux_start_tick("garbage"), None);
    }

    #[test]
    fn a_temporary_dir_names_its_pid_before_an_eight_digit_suffix() {
        assert_eq!(temp_dir_pid("bench-context-4242-0a1b2c3d"), Some(4242));
        assert_eq!(temp_dir_pid("build-cpu-minimal-17-ffffffff"), Some(17));
        let made = format!("x-{}", crate::util::unique_suffix());
        assert_eq!(temp_dir_pid(&made), Some(std::process::id()));
        // Not a TempDir's name: left alone.
        assert_eq!(temp_dir_pid("bench-context-4242"), None);
        assert_eq!(temp_dir_pid("notes-x-0a1b2c3d"), None);
        assert_eq!(temp_dir_pid("keep-12-0a1b2c3"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_alive_with_a_start_time() {
        let me = Owner::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.started.is_some());
        assert!(!me.is_gone(&me.host, probe));
    }
}
