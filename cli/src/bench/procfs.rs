//! CPU time and memory from the kernel (Linux): the whole process, or one named thread.
//! Elsewhere every figure reads as zero and the rows say "n/a".

use std::thread;
use std::time::{Duration, Instant};

/// CPU time (user + system) of the whole process, to the nanosecond.
#[cfg(target_os = "linux")]
pub fn process_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` into the valid, exclusively borrowed `now`.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

#[cfg(not(target_os = "linux"))]
pub fn process_cpu() -> Duration {
    Duration::ZERO
}

/// CPU time of one thread of this process: `schedstat`'s nanoseconds on the CPU.
pub fn thread_cpu(tid: &str) -> Duration {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// The ids of this process's threads named `name` (Linux keeps the first 15 bytes).
fn threads_named(name: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .map(|task| task.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The id of the one thread named `name`, waiting up to a second for it to start (a thread
/// names itself as it starts, after `spawn` has returned).
pub fn wait_for_thread(name: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let mut found = threads_named(name);
        match found.len() {
            1 => return Ok(found.remove(0)),
            0 if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
            n => return Err(format!("expected one thread named {name}, found {n}")),
        }
    }
}

/// Resident memory of the process, in bytes (`/proc/self/statm`, second field, in pages).
pub fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * page_size()
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    // SAFETY: `sysconf` only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(not(target_os = "linux"))]
fn page_size() -> u64 {
    4096
}

/// Cores and CPU model, for the header of the table.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown kernel".into(), |k| k.trim().to_string());
    let cores = thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!("{cores} cores, {cpu}, Linux {kernel}, load average {load} at start")
}
