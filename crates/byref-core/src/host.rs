//! Which machine (and which process namespace) this process runs on: what tells a server's
//! files on this host from another's, and a holder that can be checked here from one that
//! cannot.

use std::sync::OnceLock;

/// This machine as its processes see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): differs on another machine
    /// and after a reboot.
    pub boot_id: String,
    /// The hostname (of this UTS namespace): tells apart containers on one kernel.
    pub hostname: String,
    /// The process-id namespace (`/proc/self/ns/pid`): a pid means this process's pid only
    /// within the same one.
    pub pid_namespace: String,
}

/// This host, read once; `None` without `/proc`.
pub fn this_host() -> Option<&'static Host> {
    static HOST: OnceLock<Option<Host>> = OnceLock::new();
    HOST.get_or_init(|| {
        let read = |what| {
            let text = std::fs::read_to_string(format!("/proc/sys/kernel/{what}")).ok()?;
            let text = text.trim();
            (!text.is_empty() && !text.contains('\n')).then(|| text.to_owned())
        };
        let pid_namespace = std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
            .unwrap_or_default();
        Some(Host {
            boot_id: read("random/boot_id")?,
            hostname: read("hostname")?,
            pid_namespace,
        })
    })
    .as_ref()
}

/// When process `pid` of this pid namespace started, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`): with the pid, it names one process, as a pid alone does not once
/// the pid is reused. `None` if no such process runs.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces and parentheses.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time_and_a_host() {
        let start = process_start(std::process::id()).expect("this process");
        assert_eq!(process_start(std::process::id()), Some(start));
        assert_eq!(process_start(u32::MAX), None);
        let host = this_host().expect("/proc");
        assert!(!host.boot_id.is_empty() && host.pid_namespace.starts_with("pid:"));
    }
}
