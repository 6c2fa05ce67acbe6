//! Cleanup on every path: when a guard drops, and on Ctrl-C / SIGTERM for all live guards.
//!
//! Killing the `docker run` client does not stop its container and a killed xtask runs no
//! destructors, so everything an xtask command creates (containers, temp dirs, child processes)
//! registers a [`Guard`] here; the signal handler closes the output gate (`crate::output`: an
//! interrupted run never reports), runs the pending actions, then exits with 130.
//!
//! No new guard (and so no new container or child process) can be registered once cleanup has
//! begun, and a child process is started and registered in one step (`crate::process`), so
//! nothing is started that the handler does not know about.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::output;

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
    pub(crate) fn disarm(self) {
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
    if (pending.closed || output::interrupted()) && !IS_HANDLER.get() {
        drop(pending);
        output::wait_for_handler();
    }
    pending
}

fn register(pending: &mut Pending, action: Action) -> Guard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    pending.actions.insert(id, action);
    Guard { id }
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
    // Before anything is removed: a failure that cleanup causes is never reported.
    output::close_gate(HANDLER_PATIENCE);
    output::notice(format_args!("\ninterrupted: cleaning up"));
    run_all();
    std::process::exit(130);
}

/// On SIGINT / SIGTERM (Ctrl-C / Ctrl-Break on Windows): clean up, then exit 130.
pub fn install_signal_handler() {
    if let Err(err) = ctrlc::set_handler(on_signal) {
        output::notice(format_args!(
            "warning: cannot install the Ctrl-C handler ({err}); an interrupt may leave \
             containers behind"
        ));
    }
}

/// Starts something (a child process, a daemon) and registers its `stop` as one step, so that a
/// signal either comes before (and nothing starts) or finds it registered.
pub(crate) fn start_guarded<T: Send + Sync + 'static, E>(
    start: impl FnOnce() -> Result<T, E>,
    stop: impl Fn(&T) + Send + 'static,
) -> Result<(Arc<T>, Guard), E> {
    let mut pending = lock_pending_for_new();
    let child = Arc::new(start()?);
    let victim = Arc::clone(&child);
    let guard = register(&mut pending, Box::new(move || stop(&victim)));
    Ok((child, guard))
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
}
