//! Cleanup that runs on every path: when a guard drops, and on Ctrl-C / SIGTERM for all live guards.
//!
//! Killing the `docker run` client does not stop its container and a killed xtask runs no
//! destructors, so everything an xtask command creates (containers, temp dirs, child processes)
//! registers a `Guard` here; the signal handler runs the pending actions, then exits with 130.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

type Action = Box<dyn FnOnce() + Send>;

static PENDING: Mutex<BTreeMap<u64, Action>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Runs its action once: on drop, or from the signal handler, whichever comes first.
#[must_use = "the action runs when the guard is dropped"]
pub struct Guard {
    id: u64,
}

impl Guard {
    pub fn new(action: impl FnOnce() + Send + 'static) -> Guard {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        lock().insert(id, Box::new(action));
        Guard { id }
    }

    /// Forget the action without running it (e.g. `--keep`).
    pub fn disarm(self) {
        lock().remove(&self.id);
        std::mem::forget(self);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let action = lock().remove(&self.id);
        if let Some(action) = action {
            action();
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<u64, Action>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Run every pending action, newest first (a container before the temp dir it was built from).
pub fn run_all() {
    let actions: Vec<Action> = {
        let mut pending = lock();
        let ids: Vec<u64> = pending.keys().rev().copied().collect();
        ids.into_iter()
            .filter_map(|id| pending.remove(&id))
            .collect()
    };
    for action in actions {
        action();
    }
}

/// On SIGINT / SIGTERM (Ctrl-C / Ctrl-Break on Windows): clean up, then exit 130.
pub fn install_signal_handler() {
    let result = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: cleaning up");
        run_all();
        std::process::exit(130);
    });
    if let Err(err) = result {
        eprintln!("warning: cannot install the Ctrl-C handler ({err}); an interrupt may leave containers behind");
    }
}

/// True once a signal arrived: the handler is cleaning up and will exit with 130.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Blocks forever, leaving the exit to the signal handler. The main thread calls this when a
/// command failed because the handler removed what it was using (e.g. a container that vanished
/// under `docker inspect`), so that the exit code is 130 and not the command's error.
pub fn wait_for_handler() -> ! {
    loop {
        std::thread::park();
    }
}
