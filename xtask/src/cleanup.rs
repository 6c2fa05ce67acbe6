//! Cleanup on every path, and what a signal may still do: when a guard drops, and on Ctrl-C /
//! SIGTERM for all live guards; the output gate that keeps an interrupted run from reporting.
//!
//! Killing the `docker run` client does not stop its container and a killed xtask runs no
//! destructors, so everything an xtask command creates (containers, temp dirs, child processes)
//! registers a [`Guard`] here; the signal handler runs the pending actions, then exits with 130.
//!
//! An interrupted run never reports, by construction:
//! - Results reach stdout, report files and the step summary only through [`deliver`] (the
//!   functions of `crate::report` call it), progress lines only through [`deliver_progress`],
//!   and `main` ends through [`finish`]. All three take one lock, the gate.
//! - The handler takes the gate and marks the run interrupted *before* it removes anything. So a
//!   failure that cleanup causes (a container vanishing under a check) is seen only after the
//!   mark, and the mark stops every later delivery: the thread that tries parks until the handler
//!   exits with 130. A delivery already in progress when the signal arrives completes first.
//! - No new guard (and so no new container or child process) can be registered once cleanup has
//!   begun, and a child process is started and registered in one step ([`run`], [`reader`]), so
//!   nothing is started that the handler does not know about.
//! - [`finish`] closes the gate for good: a signal after the command's outcome is decided does
//!   not change it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Action = Box<dyn FnOnce() + Send>;

struct Pending {
    actions: BTreeMap<u64, Action>,
    /// Set when the handler took the actions: nothing may be registered after that.
    closed: bool,
}

static PENDING: Mutex<Pending> = Mutex::new(Pending {
    actions: BTreeMap::new(),
    closed: false,
});
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// Actions being run by a dropping guard right now (the handler waits for them before exiting).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set by [`finish`], which keeps the gate closed: later output no longer passes through it.
static FINISHED: AtomicBool = AtomicBool::new(false);
/// The output gate: deliveries, progress lines, the end of `main`, and the handler's mark.
static GATE: Mutex<()> = Mutex::new(());

thread_local! {
    /// True on the signal handler's thread, which must never park.
    static IS_HANDLER: Cell<bool> = const { Cell::new(false) };
}

/// How long the handler waits for a delivery in progress, and for actions other threads run.
const HANDLER_PATIENCE: Duration = Duration::from_secs(30);

/// Runs its action once: on drop, or from the signal handler, whichever comes first.
#[must_use = "the action runs when the guard is dropped"]
pub struct Guard {
    id: u64,
}

impl Guard {
    /// Registers `action`. After a signal, the calling thread parks here instead (the run is
    /// ending; whatever it was about to create would not be cleaned up).
    pub fn new(action: impl FnOnce() + Send + 'static) -> Guard {
        let mut pending = lock_pending_for_new();
        register(&mut pending, Box::new(action))
    }

    /// Forget the action without running it (e.g. `--keep`, or a child that exited).
    pub fn disarm(self) {
        lock_pending().actions.remove(&self.id);
        std::mem::forget(self);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let action = {
            let mut pending = lock_pending();
            let action = pending.actions.remove(&self.id);
            if action.is_some() {
                RUNNING.fetch_add(1, Ordering::SeqCst);
            }
            action
        };
        if let Some(action) = action {
            action();
            RUNNING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn lock_pending() -> MutexGuard<'static, Pending> {
    PENDING.lock().unwrap_or_else(|p| p.into_inner())
}

/// The pending actions, to add one; parks the caller when cleanup has begun.
fn lock_pending_for_new() -> MutexGuard<'static, Pending> {
    let pending = lock_pending();
    if (pending.closed || interrupted()) && !IS_HANDLER.get() {
        drop(pending);
        wait_for_handler();
    }
    pending
}

fn register(pending: &mut Pending, action: Action) -> Guard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    pending.actions.insert(id, action);
    Guard { id }
}

fn lock_gate() -> MutexGuard<'static, ()> {
    GATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` — writing a result to stdout, a report file, the step summary — unless the run was
/// interrupted: then the caller parks until the handler exits with 130, and nothing is written.
pub fn deliver<T>(f: impl FnOnce() -> T) -> T {
    if FINISHED.load(Ordering::SeqCst) {
        return f();
    }
    let gate = lock_gate();
    if interrupted() {
        drop(gate);
        wait_for_handler();
    }
    let out = f();
    drop(gate);
    out
}

/// Writes a progress line to stderr, or nothing once the run was interrupted (progress such as
/// `smoke cpu: FAILED (6/9 checks)` after a signal would describe what the cleanup did).
pub fn deliver_progress(line: std::fmt::Arguments) {
    if FINISHED.load(Ordering::SeqCst) {
        say(line);
        return;
    }
    let _gate = lock_gate();
    if !interrupted() {
        say(line);
    }
}

/// A line on stderr that never panics (`eprintln!` does when stderr is gone, e.g. a parent that
/// read it was killed): cleanup must go on whatever becomes of the terminal.
pub fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The end of `main`: from here on a signal no longer changes the outcome (the gate stays
/// closed, so the handler never gets to exit with 130); when a signal came first, parks until
/// the handler exits with 130, so that neither the command's error nor its exit code shows.
pub fn finish() {
    let gate = lock_gate();
    if interrupted() {
        drop(gate);
        wait_for_handler();
    }
    FINISHED.store(true, Ordering::SeqCst);
    std::mem::forget(gate);
}

/// Runs every pending action, newest first (a container before the temp dir it was built from),
/// then waits for actions that dropping guards on other threads are running.
fn run_all() {
    let actions: Vec<Action> = {
        let mut pending = lock_pending();
        pending.closed = true;
        let ids: Vec<u64> = pending.actions.keys().rev().copied().collect();
        ids.into_iter()
            .filter_map(|id| pending.actions.remove(&id))
            .collect()
    };
    for action in actions {
        // One action that panics must not keep the others (and the exit) from happening.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action));
    }
    let deadline = Instant::now() + HANDLER_PATIENCE;
    while RUNNING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the handler does on SIGINT / SIGTERM (Ctrl-C / Ctrl-Break on Windows).
fn on_signal() {
    IS_HANDLER.set(true);
    // Close the gate: wait (a bounded time) for a delivery in progress, then mark the run.
    let deadline = Instant::now() + HANDLER_PATIENCE;
    let gate = loop {
        match GATE.try_lock() {
            Ok(gate) => break Some(gate),
            Err(std::sync::TryLockError::Poisoned(p)) => break Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            // `finish` holds it for good: the outcome is decided and the process is exiting.
            Err(std::sync::TryLockError::WouldBlock) => break None,
        }
    };
    INTERRUPTED.store(true, Ordering::SeqCst);
    drop(gate);
    say(format_args!("\ninterrupted: cleaning up"));
    run_all();
    std::process::exit(130);
}

/// On SIGINT / SIGTERM (Ctrl-C / Ctrl-Break on Windows): clean up, then exit 130.
pub fn install_signal_handler() {
    if let Err(err) = ctrlc::set_handler(on_signal) {
        say(format_args!(
            "warning: cannot install the Ctrl-C handler ({err}); an interrupt may leave \
             containers behind"
        ));
    }
}

/// True once a signal arrived: the handler is cleaning up and will exit with 130.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Blocks forever, leaving the exit to the signal handler.
fn wait_for_handler() -> ! {
    loop {
        std::thread::park();
    }
}

/// Starts a child process and registers its kill as one step, so that a signal either comes
/// before (and nothing starts) or finds it registered.
fn start_guarded<T: Send + Sync + 'static, E>(
    start: impl FnOnce() -> Result<T, E>,
    kill: fn(&T),
) -> Result<(Arc<T>, Guard), E> {
    let mut pending = lock_pending_for_new();
    let child = Arc::new(start()?);
    let victim = Arc::clone(&child);
    let guard = register(&mut pending, Box::new(move || kill(&victim)));
    Ok((child, guard))
}

/// `expr.run()`, with the child (and its children) killed on Ctrl-C / SIGTERM. For every
/// long-running process outside docker.rs: mmdebstrap, cargo, pytest, trivy….
pub fn run(expr: &duct::Expression) -> io::Result<std::process::Output> {
    let (handle, guard) = start_guarded(|| expr.start(), |h| drop(h.kill()))?;
    let out = handle.wait().cloned();
    guard.disarm();
    out
}

/// Starts a daemon the command owns — a registry, a Docker engine — and registers `stop` as one
/// step, as [`run`] and [`reader`] do for a child: `start` runs while no guard can be registered
/// or run, so a signal that arrives meanwhile is handled once `start` has returned, and then
/// stops what it started. For starts that take seconds (they wait until the daemon answers);
/// the guard stops it on drop.
pub fn start_daemon<T: Send + Sync + 'static>(
    start: impl FnOnce() -> anyhow::Result<T>,
    stop: fn(&T),
) -> anyhow::Result<(Arc<T>, Guard)> {
    start_guarded(start, stop)
}

/// How long a process tree stopped with [`run_tree`] has to end after SIGTERM, before SIGKILL.
const TREE_GRACE: Duration = Duration::from_secs(20);

/// `expr.run()` for a child that starts a tree of its own — `cargo test` (test binaries, and
/// the xtask processes they start, each owning containers), another `cargo xtask` — in a
/// process group of its own: on Ctrl-C / SIGTERM the whole group gets SIGTERM, so each process
/// can clean up what it owns, then SIGKILL after a grace period. (Killing the child alone would
/// leave its children running: cargo does not pass a signal on.) Elsewhere than on Unix, the
/// child is killed as by [`run`].
pub fn run_tree(expr: &duct::Expression) -> io::Result<std::process::Output> {
    #[cfg(unix)]
    let expr = &in_own_group(expr);
    let (handle, guard) = start_guarded(|| expr.start(), stop_tree)?;
    let out = handle.wait().cloned();
    guard.disarm();
    out
}

/// SIGTERM to the child's process group, then SIGKILL if it has not ended within the grace.
fn stop_tree(handle: &duct::Handle) {
    stop_groups(&handle.pids(), || drop(handle.try_wait()));
    drop(handle.kill());
}

/// SIGTERM to each process group, then SIGKILL to what is left of it after the grace; `reap`
/// collects the child as it ends (a zombie never leaves the table otherwise).
fn stop_groups(pids: &[u32], reap: impl Fn()) {
    #[cfg(unix)]
    for &pid in pids {
        signal_group(pid, "TERM");
        // Until every process of the group is gone (the child's children clean up too), reaping
        // the child as it ends.
        let deadline = Instant::now() + TREE_GRACE;
        while Instant::now() < deadline {
            reap();
            if !group_alive(pid, || signal_group(pid, "0")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group(pid, "KILL");
    }
    #[cfg(not(unix))]
    let _ = (pids, reap);
}

/// `kill -SIG -- -PGID`; true when some process of the group got it.
#[cfg(unix)]
fn signal_group(pgid: u32, name: &str) -> bool {
    duct::cmd!("kill", format!("-{name}"), "--", format!("-{pgid}"))
        .stdin_null()
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run()
        .is_ok_and(|o| o.status.success())
}

#[cfg(unix)]
fn in_own_group(expr: &duct::Expression) -> duct::Expression {
    expr.before_spawn(|cmd| {
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        Ok(())
    })
}

/// Whether a process of group `pgid` still runs. On Linux from /proc, zombies left out (where
/// PID 1 does not reap orphans, as in many containers, they would count for ever); elsewhere
/// `kill -0`.
#[cfg(unix)]
fn group_alive(pgid: u32, kill_0: impl Fn() -> bool) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return kill_0();
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

/// A child whose stdout is read as it comes (`expr.reader()`), killed on drop and on Ctrl-C /
/// SIGTERM.
pub struct Reader {
    handle: Arc<duct::ReaderHandle>,
    /// Started by [`reader_tree`]: stopped by process group.
    #[cfg_attr(not(unix), allow(dead_code))]
    tree: bool,
    _guard: Guard,
}

pub fn reader(expr: &duct::Expression) -> io::Result<Reader> {
    let (handle, guard) = start_guarded(|| expr.reader(), |h| drop(h.kill()))?;
    Ok(Reader {
        handle,
        tree: false,
        _guard: guard,
    })
}

/// [`reader`] for a child that starts processes of its own and cleans up on SIGTERM
/// (mmdebstrap unmounts what it mounted in its chroot and removes its temp dir; a SIGKILL would
/// leave them): in a process group of its own, which gets SIGTERM on Ctrl-C / SIGTERM and on
/// drop, then SIGKILL after the grace, as with [`run_tree`]. Elsewhere than on Unix, as [`reader`].
pub fn reader_tree(expr: &duct::Expression) -> io::Result<Reader> {
    #[cfg(unix)]
    let expr = &in_own_group(expr);
    let (handle, guard) = start_guarded(
        || expr.reader(),
        |h| {
            // Ended and reaped: its group ID may belong to someone else by now.
            if !matches!(h.try_wait(), Ok(Some(_))) {
                stop_groups(&h.pids(), || drop(h.try_wait()));
            }
            drop(h.kill());
        },
    )?;
    Ok(Reader {
        handle,
        tree: cfg!(unix),
        _guard: guard,
    })
}

impl Reader {
    /// The exit status once its output was read to the end.
    pub fn try_wait(&self) -> io::Result<Option<&std::process::Output>> {
        self.handle.try_wait()
    }

    /// Asks the child to stop, from any thread, without waiting: SIGTERM to its process group
    /// (from [`reader_tree`]), else a kill. Its reader then sees the end of its output. For
    /// siblings of a failed child that are no longer worth finishing.
    pub fn stop(&self) {
        if matches!(self.handle.try_wait(), Ok(Some(_))) {
            return;
        }
        #[cfg(unix)]
        if self.tree {
            for pid in self.handle.pids() {
                signal_group(pid, "TERM");
            }
            return;
        }
        drop(self.handle.kill());
    }
}

impl io::Read for &Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.handle).read(buf)
    }
}

impl io::Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.handle).read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_guard_runs_its_action_once_on_drop_and_never_when_disarmed() {
        static RAN: AtomicUsize = AtomicUsize::new(0);
        drop(Guard::new(|| {
            RAN.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
        Guard::new(|| {
            RAN.fetch_add(10, Ordering::SeqCst);
        })
        .disarm();
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_guarded_run_returns_the_output_and_leaves_no_action() {
        let out = run(&duct::cmd!("sh", "-c", "echo hi; exit 3")
            .stdout_capture()
            .unchecked())
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        assert_eq!(out.status.code(), Some(3));
        assert!(!deliver(interrupted));
    }
}
