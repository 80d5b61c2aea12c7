//! Management threads yield to shards.
//!
//! The control socket, the htable sweeper and snapshot checks run on ordinary threads that the
//! kernel may schedule on a shard's CPU. Checking a 34 MB snapshot takes tens of milliseconds;
//! at the default priority it competes with the shard as an equal and delays calls by that
//! much. At nice 19 such a thread gets about 1.5 % of a CPU that a nice-0 shard wants (CFS
//! weights 15 vs 1024), so the shard barely notices, yet the management work still finishes
//! when the shard is saturated (unlike `SCHED_IDLE`, which could starve a push forever).

use std::io;

/// Lower the calling thread's priority to nice 19 (Linux: `setpriority` applies per thread
/// when given a thread id).
pub fn lower_current_thread() -> io::Result<()> {
    // SAFETY: gettid has no preconditions and only returns the caller's thread id.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority takes plain integers; PRIO_PROCESS with a thread id changes only
    // that thread's nice value on Linux. No memory is passed.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_can_lower_its_own_priority() {
        std::thread::spawn(|| {
            super::lower_current_thread().unwrap();
            let nice = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // field 19 (1-based) is the nice value; the comm field may hold spaces, so count
            // from the closing parenthesis
            let after = &nice[nice.rfind(')').unwrap() + 2..];
            let fields: Vec<&str> = after.split(' ').collect();
            assert_eq!(fields[16], "19", "{nice}");
        })
        .join()
        .unwrap();
    }
}
