//! The one way to start a child process. A [`Cmd`] is prepared as data (program, arguments,
//! directory, environment, stdin), then run one way: captured ([`Cmd::output`], [`Cmd::read`],
//! [`Cmd::output_within`]), streamed to stderr ([`Cmd::stream`]), read as it comes
//! ([`Cmd::reader`], [`Cmd::lines`]), or started as a daemon that [`daemon`] owns.
//!
//! Every child starts in a process group of its own and is registered with the cleanup guard in
//! the same step: on Ctrl-C / SIGTERM, and when its owner returns early, the whole group gets
//! SIGTERM (so a wrapper that forks the real tool, or `cargo test`, stops with everything it
//! started), then SIGKILL after the grace period. Signals are sent by system call.

#![allow(clippy::disallowed_methods, clippy::disallowed_macros)] // the one place children start

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cleanup::{self, Guard};
use crate::util;

/// How long a stopped process group has to end after SIGTERM, unless [`Cmd::grace`] says.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A child process, prepared as data.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    grace: Duration,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            stdin: None,
            grace: DEFAULT_GRACE,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub(crate) fn dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    pub(crate) fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        let value = Some(value.as_ref().to_owned());
        self.env.push((name.as_ref().to_owned(), value));
        self
    }

    /// Bytes for its stdin (else stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// How long its process group has to end after SIGTERM before SIGKILL.
    pub(crate) fn grace(mut self, grace: Duration) -> Cmd {
        self.grace = grace;
        self
    }

    /// The program and its arguments as text, for messages and tests.
    pub(crate) fn argv(&self) -> Vec<String> {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// `program arg…` for messages, a path argument (or a `--flag=` value) as [`util::shown`].
    pub(crate) fn display(&self) -> String {
        let shown = |arg: &String| match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => {
                format!("{flag}={}", util::shown(value))
            }
            _ => util::shown(arg),
        };
        self.argv().iter().map(shown).collect::<Vec<_>>().join(" ")
    }

    fn program_name(&self) -> String {
        Path::new(&self.program)
            .file_name()
            .unwrap_or(&self.program)
            .to_string_lossy()
            .into_owned()
    }

    fn expression(&self) -> duct::Expression {
        let mut expr = duct::cmd(&self.program, &self.args).unchecked();
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        for (name, value) in &self.env {
            expr = match value {
                Some(value) => expr.env(name, value),
                None => expr.env_remove(name),
            };
        }
        expr = match &self.stdin {
            Some(bytes) => expr.stdin_bytes(bytes.clone()),
            None => expr.stdin_null(),
        };
        in_own_group(expr)
    }

    fn started(&self, err: io::Error) -> anyhow::Error {
        let what = if err.kind() == io::ErrorKind::NotFound {
            format!("`{}` is not installed or not on PATH", self.program_name())
        } else {
            format!("cannot start `{}`", self.program_name())
        };
        anyhow::Error::new(err).context(what)
    }

    /// Runs it to the end with stdout and stderr captured; the exit status is the caller's to
    /// judge.
    pub fn output(&self) -> Result<Output> {
        self.run_handle(self.expression().stdout_capture().stderr_capture())
    }

    /// Runs it to the end and returns its stdout as text, trimmed; a failure is an error that
    /// quotes the end of its stderr.
    pub fn read(&self) -> Result<String> {
        let out = self.output_checked()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs it to the end; a failure is an error that quotes the end of its stderr.
    pub fn run(&self) -> Result<()> {
        self.output_checked().map(drop)
    }

    /// [`Cmd::output`] for a command that must succeed: a failure is an error quoting its stderr.
    pub(crate) fn output_checked(&self) -> Result<Output> {
        let out = self.output()?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.display(),
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr), 5)
            );
        }
        Ok(out)
    }

    /// Runs it to the end with its stdout and stderr on this process's stderr (progress of
    /// builds and installs); stdout stays free for results.
    pub(crate) fn stream(&self) -> Result<ExitStatus> {
        self.run_handle(self.expression().stdout_to_stderr())
            .map(|out| out.status)
    }

    /// Runs it to the end with its stdout captured and its stderr on this process's stderr (a
    /// child command's report, its progress shown as it comes).
    pub(crate) fn output_showing_progress(&self) -> Result<Output> {
        self.run_handle(self.expression().stdout_capture())
    }

    /// Runs it to the end with this process's stdout and stderr: a tool whose output is this
    /// one's own (`cargo xtask bench` runs the bench binary so).
    pub(crate) fn inherit(&self) -> Result<ExitStatus> {
        self.run_handle(self.expression()).map(|out| out.status)
    }

    /// Runs it to the end with stdout and stderr merged and captured.
    pub(crate) fn output_merged(&self) -> Result<Output> {
        self.run_handle(self.expression().stderr_to_stdout().stdout_capture())
    }

    /// Like [`Cmd::output`], but stops it after `timeout`: `None` when it timed out.
    pub(crate) fn output_within(&self, timeout: Duration) -> Result<Option<Output>> {
        let expr = self.expression().stdout_capture().stderr_capture();
        let (handle, guard) = self.spawn_guarded(&expr)?;
        let done = handle
            .wait_timeout(timeout)
            .context("waiting for a child")?;
        if done.is_none() {
            stop_handle(&handle, self.grace);
        }
        let out = handle.wait().cloned().context("waiting for a child");
        guard.disarm();
        Ok(done.is_some().then_some(out?))
    }

    /// Runs it to the end with stdout and stderr merged, handing over each line as it comes.
    pub(crate) fn lines(&self, mut on_line: impl FnMut(&str)) -> Result<ExitStatus> {
        let reader = self.reader_of(self.expression().stderr_to_stdout())?;
        for line in BufReader::new(&reader).lines() {
            on_line(
                &line.with_context(|| format!("reading the output of {}", self.program_name()))?,
            );
        }
        reader.finish().map(|out| out.status)
    }

    /// Starts it with its stdout to be read as it comes (stderr captured for [`Reader::finish`]).
    pub(crate) fn reader(&self) -> Result<Reader> {
        self.reader_of(self.expression().stderr_capture())
    }

    /// Starts it with stdout and stderr merged, to be read as they come.
    pub(crate) fn reader_merged(&self) -> Result<Reader> {
        self.reader_of(self.expression().stderr_to_stdout())
    }

    fn reader_of(&self, expr: duct::Expression) -> Result<Reader> {
        let grace = self.grace;
        let (handle, guard) =
            cleanup::start_guarded(|| expr.reader(), move |h| stop_reader(h, grace))
                .map_err(|e| self.started(e))?;
        Ok(Reader {
            handle,
            program: self.program_name(),
            _guard: guard,
        })
    }

    /// Starts it for [`daemon`]'s `start`, with stdout and stderr appended to `log`. Not guarded
    /// on its own: the daemon's owner stops it ([`Child::stop`]).
    pub(crate) fn spawn_daemon(&self, log: &Path) -> Result<Child> {
        let handle = self
            .expression()
            .stderr_to_stdout()
            .stdout_path(log)
            .start()
            .map_err(|e| self.started(e))?;
        Ok(Child {
            handle,
            grace: self.grace,
        })
    }

    fn spawn_guarded(&self, expr: &duct::Expression) -> Result<(Arc<duct::Handle>, Guard)> {
        let grace = self.grace;
        cleanup::start_guarded(|| expr.start(), move |h| stop_handle(h, grace))
            .map_err(|e| self.started(e))
    }

    fn run_handle(&self, expr: duct::Expression) -> Result<Output> {
        let (handle, guard) = self.spawn_guarded(&expr)?;
        let out = handle.wait().cloned();
        guard.disarm();
        out.with_context(|| format!("waiting for `{}`", self.program_name()))
    }
}

/// The last `n` non-empty lines of a tool's output, or "no output".
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.len() {
        0 => "no output".into(),
        len => lines[len.saturating_sub(n)..].join("\n"),
    }
}

/// A child whose stdout is read as it comes; stopped (its process group) on drop and on
/// Ctrl-C / SIGTERM.
pub(crate) struct Reader {
    handle: Arc<duct::ReaderHandle>,
    program: String,
    _guard: Guard,
}

impl Reader {
    /// Reads what is left and returns the output (stderr captured unless merged); the exit
    /// status is the caller's to judge.
    pub(crate) fn finish(&self) -> Result<Output> {
        io::copy(&mut &*self.handle, &mut io::sink())
            .with_context(|| format!("reading the output of {}", self.program))?;
        let out = self
            .handle
            .try_wait()
            .with_context(|| format!("waiting for {}", self.program))?
            .ok_or_else(|| anyhow!("{} closed its output but did not exit", self.program))?
            .clone();
        Ok(out)
    }

    /// Asks it to stop, from any thread, without waiting: SIGTERM to its process group. Its
    /// reader then sees the end of its output.
    pub(crate) fn stop(&self) {
        if !matches!(self.handle.try_wait(), Ok(Some(_))) {
            for pid in self.handle.pids() {
                signal_group(pid, Signal::Term);
            }
        }
    }
}

impl Read for &Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.handle).read(buf)
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.handle).read(buf)
    }
}

/// A daemon's process, started by [`Cmd::spawn_daemon`] inside [`daemon`]'s `start`.
pub(crate) struct Child {
    handle: duct::Handle,
    grace: Duration,
}

impl Child {
    /// True once it has exited.
    pub(crate) fn exited(&self) -> bool {
        matches!(self.handle.try_wait(), Ok(Some(_)))
    }

    /// SIGTERM to its process group, SIGKILL after the grace; returns once it has ended.
    pub(crate) fn stop(&self) {
        stop_handle(&self.handle, self.grace);
        let _ = self.handle.wait();
    }
}

/// Starts a daemon the command owns — a registry, a Docker engine — and registers `stop` in
/// one step: `start` runs while no guard can be registered or run, so a signal that arrives
/// meanwhile is handled once `start` has returned, and then stops what it started. The guard
/// stops it on drop.
pub fn daemon<T: Send + Sync + 'static>(
    start: impl FnOnce() -> Result<T>,
    stop: fn(&T),
) -> Result<(Arc<T>, Guard)> {
    cleanup::start_guarded(start, stop)
}

/// Stops process groups this process did not start — daemons a killed run left, each the leader
/// of its own group: SIGTERM to every group, SIGKILL to what is left of them after `grace`.
/// This process's own group is never signalled.
pub fn stop_left_behind(pgids: &[u32], grace: Duration) {
    let own = own_group();
    let groups: Vec<u32> = pgids
        .iter()
        .copied()
        .filter(|g| *g > 1 && Some(*g) != own)
        .collect();
    for g in &groups {
        signal_group(*g, Signal::Term);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && groups.iter().any(|g| group_alive(*g)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for g in &groups {
        signal_group(*g, Signal::Kill);
    }
}

#[cfg(unix)]
fn own_group() -> Option<u32> {
    // SAFETY: getpgrp(2) takes nothing and cannot fail.
    u32::try_from(unsafe { libc::getpgrp() }).ok()
}

#[cfg(not(unix))]
fn own_group() -> Option<u32> {
    None
}

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
    /// Signal 0: only asks whether the group exists.
    Probe,
}

fn stop_handle(handle: &duct::Handle, grace: Duration) {
    // Ended and reaped: its group ID may belong to someone else by now.
    if matches!(handle.try_wait(), Ok(Some(_))) {
        return;
    }
    for pid in handle.pids() {
        stop_group(pid, grace, || drop(handle.try_wait()));
    }
    let _ = handle.kill();
}

fn stop_reader(handle: &duct::ReaderHandle, grace: Duration) {
    if matches!(handle.try_wait(), Ok(Some(_))) {
        return;
    }
    for pid in handle.pids() {
        stop_group(pid, grace, || drop(handle.try_wait()));
    }
    let _ = handle.kill();
}

/// SIGTERM to the group, SIGKILL to what is left of it after `grace`; `reap` collects the
/// leader as it ends (a zombie never leaves the process table otherwise).
fn stop_group(pgid: u32, grace: Duration, reap: impl Fn()) {
    if !cfg!(unix) {
        return;
    }
    signal_group(pgid, Signal::Term);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && group_alive(pgid) {
        reap();
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(pgid, Signal::Kill);
}

#[cfg(unix)]
fn in_own_group(expr: duct::Expression) -> duct::Expression {
    expr.before_spawn(|cmd| {
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        Ok(())
    })
}

#[cfg(not(unix))]
fn in_own_group(expr: duct::Expression) -> duct::Expression {
    expr
}

/// kill(2) to a process group; true when some process of it got the signal.
#[cfg(unix)]
fn signal_group(pgid: u32, signal: Signal) -> bool {
    let signal = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
        Signal::Probe => 0,
    };
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    // SAFETY: kill(2) takes plain integers; a negative pid names the process group.
    unsafe { libc::kill(-pgid, signal) == 0 }
}

#[cfg(not(unix))]
fn signal_group(_pgid: u32, _signal: Signal) -> bool {
    false
}

/// Whether a process of group `pgid` still runs, zombies left out (where PID 1 reaps no
/// orphans, as in many containers, they would count for ever).
fn group_alive(pgid: u32) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return signal_group(pgid, Signal::Probe);
    };
    procs.flatten().any(|entry| {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        // After the command name: state, ppid, pgrp.
        let fields: Vec<&str> = rest.split_whitespace().take(3).collect();
        fields.len() == 3 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn output_captures_both_streams_and_leaves_the_status_to_the_caller() {
        let out = Cmd::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn read_fails_quoting_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo nope >&2; exit 1"])
            .read()
            .unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
        assert_eq!(Cmd::new("echo").arg(" hi ").read().unwrap(), "hi");
    }

    #[test]
    fn a_missing_program_names_itself() {
        let err = Cmd::new("xtask-no-such-tool").output().unwrap_err();
        assert!(
            err.to_string()
                .contains("`xtask-no-such-tool` is not installed"),
            "{err}"
        );
    }

    #[test]
    fn stdin_env_and_dir_reach_the_child() {
        let out = Cmd::new("sh")
            .args(["-c", "cat; echo \" $X\"; pwd"])
            .stdin("in")
            .env("X", "x")
            .dir("/")
            .read()
            .unwrap();
        assert_eq!(out, "in x\n/");
    }

    #[test]
    fn output_within_stops_the_whole_group_at_the_timeout() {
        let start = Instant::now();
        let out = Cmd::new("sh")
            .args(["-c", "sleep 30 & sleep 30; echo done"])
            .grace(Duration::from_millis(200))
            .output_within(Duration::from_millis(300))
            .unwrap();
        assert!(out.is_none());
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn lines_hand_over_stdout_and_stderr() {
        let mut seen = Vec::new();
        let status = Cmd::new("sh")
            .args(["-c", "echo a; echo b >&2"])
            .lines(|l| seen.push(l.to_string()))
            .unwrap();
        assert!(status.success());
        seen.sort();
        assert_eq!(seen, ["a", "b"]);
    }
}
