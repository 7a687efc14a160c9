//! SIGINT / SIGTERM (Ctrl-C, `kill`): the commands finish cleanly instead of dying, so that
//! their peers are told the connection closed rather than left to time out.

use std::io::Write as _;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

static STOP: Mutex<bool> = Mutex::new(false);
static SIGNALLED: Condvar = Condvar::new();

/// The exit code of a command a signal cut short (the shell's 128 + SIGINT).
pub const INTERRUPTED_EXIT: u8 = 130;

/// Routes SIGINT and SIGTERM to [`requested`] and [`wait_until`].
pub fn install() -> Result<(), String> {
    ctrlc::set_handler(|| {
        if requested() {
            // A second signal: the user will not wait for the clean close.
            std::process::exit(i32::from(INTERRUPTED_EXIT));
        }
        request();
    })
    .map_err(|error| format!("cannot handle SIGINT/SIGTERM: {error}"))
}

/// Asks the command to stop, as a signal does.
fn request() {
    *STOP.lock().unwrap_or_else(|p| p.into_inner()) = true;
    SIGNALLED.notify_all();
}

/// `println!` for the commands' output: a closed stdout (`gudp serve | head -3`) stops the
/// command cleanly, as a signal would, where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::stop::print_line(format_args!($($arg)*))
    };
}
pub(crate) use say;

pub fn print_line(line: std::fmt::Arguments) {
    if writeln!(std::io::stdout().lock(), "{line}").is_err() {
        request();
    }
}

/// Whether a signal asked the command to stop.
pub fn requested() -> bool {
    *STOP.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sleeps until `deadline` or a signal, whichever comes first; `true` if a signal came.
pub fn wait_until(deadline: Instant) -> bool {
    let mut stop = STOP.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        if *stop || now >= deadline {
            return *stop;
        }
        stop = SIGNALLED
            .wait_timeout(stop, deadline - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}
