//! The owner labels of what the tests create, as `cargo xtask`'s reclaim reads them
//! (xtask/src/reclaim.rs): host, pid and start time of the test process. When it is gone, the
//! next `cargo xtask test` (or smoke) removes what it left; while it runs, nothing does.

use std::sync::OnceLock;

pub const OWNER_HOST: &str = "voxserve.xtask.owner.host";
pub const OWNER_PID: &str = "voxserve.xtask.owner.pid";
pub const OWNER_STARTED: &str = "voxserve.xtask.owner.started";

/// `host`, `pid` and `started` of a process as the labels hold them; None when it is gone.
pub fn process(pid: u32) -> Option<(String, String, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // A zombie has ended (where PID 1 reaps no orphans, it stays in /proc).
    if fields.first() == Some(&"Z") {
        return None;
    }
    let tick = fields.get(19)?.to_string();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Some((
        host.trim().to_string(),
        pid.to_string(),
        format!("{}/{tick}", boot.trim()),
    ))
}

/// `KEY=VALUE` owner labels of this test process.
pub fn labels() -> &'static [String] {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    LABELS.get_or_init(|| {
        let (host, pid, started) =
            process(std::process::id()).expect("reading /proc/self/stat (these tests need Linux)");
        vec![
            format!("{OWNER_HOST}={host}"),
            format!("{OWNER_PID}={pid}"),
            format!("{OWNER_STARTED}={started}"),
        ]
    })
}
