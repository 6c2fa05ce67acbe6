//! Results go to stdout through [`result`], messages to stderr through [`message`] (progress,
//! warnings, diagnostics) or [`notice`] (the cleanup's own lines): nothing else in the crate
//! prints. Results and messages pass the cleanup gate, so an interrupted run reports nothing.

use anyhow::{Context, Result};
use std::io::Write;

use crate::cleanup;

/// Writes a result to stdout, unless the run was interrupted (then the caller parks until the
/// signal handler exits with 130).
pub fn result(text: &str) -> Result<()> {
    cleanup::deliver(|| {
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
    cleanup::unless_interrupted(|| write_stderr(text));
}

/// Writes a line to stderr whatever happens: the cleanup's own lines and the final error.
pub fn notice(text: std::fmt::Arguments) {
    write_stderr(text);
}

/// Whether stderr is a terminal (where BuildKit draws its own progress).
pub fn stderr_is_terminal() -> bool {
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
