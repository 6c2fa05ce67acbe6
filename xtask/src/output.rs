//! Results go to stdout through [`result`], messages to stderr through [`message`] (progress,
//! warnings, diagnostics) or [`notice`] (the cleanup's own lines): nothing else in the crate
//! prints. Results and messages pass the gate here, so an interrupted run reports nothing.
//!
//! An interrupted run never reports, by construction:
//! - Results reach stdout, report files and the step summary only through [`deliver`]
//!   ([`result`] and `crate::report` call it), messages only through [`message`], and `main`
//!   ends through [`finish`]. All three take one lock, the gate.
//! - The signal handler (`crate::cleanup`) closes the gate with [`close_gate`] *before* it removes
//!   anything. So a failure that cleanup causes (a container vanishing under a check) is seen only
//!   after the mark, and the mark stops every later delivery: the thread that tries parks until
//!   the handler exits with 130. A delivery already in progress when the signal arrives completes
//!   first.
//! - [`finish`] closes the gate for good: a signal after the command's outcome is decided does
//!   not change it.

use anyhow::{Context, Result};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set by [`finish`], which keeps the gate closed: later output no longer passes through it.
static FINISHED: AtomicBool = AtomicBool::new(false);
/// Deliveries, messages, the end of `main`, and the handler's mark.
static GATE: Mutex<()> = Mutex::new(());

/// Writes a result to stdout, unless the run was interrupted (then the caller parks until the
/// signal handler exits with 130).
pub fn result(text: &str) -> Result<()> {
    deliver(|| {
        #[allow(clippy::disallowed_methods)] // the one place results are written
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .context("writing the report")
    })
}

/// Writes a message (one line or several) to stderr, or nothing once the run was interrupted:
/// after a signal it would describe what the cleanup did.
pub fn message(text: std::fmt::Arguments) {
    if FINISHED.load(Ordering::SeqCst) {
        return write_stderr(text);
    }
    let _gate = lock_gate();
    if !interrupted() {
        write_stderr(text);
    }
}

/// Writes a line to stderr whatever happens: the cleanup's own lines and the final error.
pub(crate) fn notice(text: std::fmt::Arguments) {
    write_stderr(text);
}

fn lock_gate() -> MutexGuard<'static, ()> {
    GATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` — writing a result to stdout, a report file, the step summary — unless the run was
/// interrupted: then the caller parks until the handler exits with 130, and nothing is written.
pub(crate) fn deliver<T>(f: impl FnOnce() -> T) -> T {
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

/// The signal handler's first step: waits (at most `patience`) for a delivery in progress, then
/// marks the run interrupted, which stops every later delivery and message.
pub(crate) fn close_gate(patience: Duration) {
    let deadline = Instant::now() + patience;
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
}

/// True once a signal arrived: the handler is cleaning up and will exit with 130.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Blocks forever, leaving the exit to the signal handler.
pub(crate) fn wait_for_handler() -> ! {
    loop {
        std::thread::park();
    }
}

/// Whether stderr is a terminal (where BuildKit draws its own progress).
pub(crate) fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    #[allow(clippy::disallowed_methods)] // asks, writes nothing
    std::io::stderr().is_terminal()
}

/// Never panics (`eprintln!` does when stderr is gone, e.g. a parent that read it was killed):
/// cleanup must go on whatever becomes of the terminal.
fn write_stderr(text: std::fmt::Arguments) {
    #[allow(clippy::disallowed_methods)] // the one place messages are written
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// A progress line on stderr: `==> …`.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => {
        $crate::output::message(format_args!("==> {}", format_args!($($arg)*)))
    };
}
pub use progress;

/// A warning on stderr: `warning: …`.
#[macro_export]
macro_rules! warning {
    ($($arg:tt)*) => {
        $crate::output::message(format_args!("warning: {}", format_args!($($arg)*)))
    };
}
pub use warning;
