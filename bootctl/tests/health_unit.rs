//! `multiboot-health.service` (packaging/image/), the unit that runs `bootctl health` in
//! images with systemd: systemd's own `systemd-analyze verify` accepts it without a word,
//! and it runs this bootctl's `health`.

use std::process::Command;

use e2e::tmp::TempDir;
use e2e::tools::require_tools;

const BOOTCTL: &str = env!("CARGO_BIN_EXE_bootctl");

fn unit() -> String {
    let path = e2e::workspace_root().join("packaging/image/multiboot-health.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn systemd_accepts_the_health_unit() {
    require_tools(&["systemd-analyze"]);
    let text = unit();
    assert!(
        text.contains("\nExecStart=/usr/sbin/bootctl health\n"),
        "the unit runs bootctl health:\n{text}"
    );
    // verify checks that the command exists: this bootctl stands in for the installed one.
    let dir = TempDir::new("health-unit");
    let path = dir.join("multiboot-health.service");
    std::fs::write(&path, text.replace("/usr/sbin/bootctl", BOOTCTL)).expect("writing the unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("running systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}
