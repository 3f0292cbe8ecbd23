//! Booting a disk image under QEMU (software emulation only) and reading its console.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{self, ChildGuard};
use crate::fixture::MARKER;
use crate::tmp::TempDir;
use crate::tools;

/// A generous limit for one fixture boot (about 13 s when the machine is idle, 5 s more
/// behind the menu timeout of a grub.cfg the deployer wrote).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS.fd";

/// Which firmware the virtual machine starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, booting GRUB's i386-pc core from the disk's bios_grub partition.
    Bios,
    /// OVMF, booting `\EFI\BOOT\BOOTX64.EFI` from the disk's ESP.
    Uefi,
}

/// What one boot showed on the serial console.
#[derive(Debug)]
pub struct BootOutcome {
    /// The fixture image that came up (`MULTIBOOT-FIXTURE booted=<name>`), if any.
    pub booted: Option<String>,
    /// What `/etc/fixture/run` printed, between its begin and end markers.
    pub run_output: String,
    /// The exit code of `/etc/fixture/run`, if it ran to the end.
    pub run_rc: Option<i32>,
    /// The whole console log (carriage returns removed).
    pub serial: String,
    /// Where the console log was kept.
    pub log: PathBuf,
    /// How long the machine ran.
    pub elapsed: Duration,
    /// Whether QEMU had to be killed at the time limit.
    pub timed_out: bool,
}

/// A kernel QEMU loads itself, bypassing the disk's boot loader (as kexec or another boot
/// loader would).
#[derive(Clone, Debug)]
pub struct DirectKernel {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel command line.
    pub append: String,
}

/// Boots `disk` until the guest powers off (or `timeout`), with no keyboard input, and
/// keeps the console log at `<workspace>/tests/artifacts/<artifact_name>.log`.
pub fn boot(
    disk: &Path,
    firmware: Firmware,
    timeout: Duration,
    artifact_name: &str,
) -> BootOutcome {
    boot_with(disk, firmware, None, timeout, artifact_name)
}

/// [`boot`], with `direct` (if given) loaded by QEMU instead of what the disk boots.
pub fn boot_with(
    disk: &Path,
    firmware: Firmware,
    direct: Option<&DirectKernel>,
    timeout: Duration,
    artifact_name: &str,
) -> BootOutcome {
    let disks = [disk];
    let mut machine = Machine::new(&disks, firmware, timeout, artifact_name);
    machine.direct = direct;
    machine.boot()
}

/// [`boot`] of a machine with several disks, in the order the firmware sees them: BIOS
/// boots the first.
pub fn boot_disks(
    disks: &[&Path],
    firmware: Firmware,
    timeout: Duration,
    artifact_name: &str,
) -> BootOutcome {
    Machine::new(disks, firmware, timeout, artifact_name).boot()
}

/// Boots `direct` on SeaBIOS with `disks` (`vda`, `vdb`, ... in this order), no network,
/// until the guest powers off (or `timeout`).
pub fn boot_direct(
    disks: &[&Path],
    direct: &DirectKernel,
    timeout: Duration,
    artifact_name: &str,
) -> BootOutcome {
    boot_kernel(disks, direct, false, timeout, artifact_name)
}

fn boot_kernel(
    disks: &[&Path],
    direct: &DirectKernel,
    network: bool,
    timeout: Duration,
    artifact_name: &str,
) -> BootOutcome {
    let mut machine = Machine::new(disks, Firmware::Bios, timeout, artifact_name);
    machine.direct = Some(direct);
    machine.network = network;
    machine.boot()
}

/// Boots `direct` (the deploy ramdisk) on SeaBIOS with `disks` and one NIC on QEMU's
/// user-mode network, where the guest is 10.0.2.15 (by DHCP) and reaches this machine's
/// 127.0.0.1 as 10.0.2.2, until the guest powers off (or `timeout`).
pub fn boot_networked(
    disks: &[&Path],
    direct: &DirectKernel,
    timeout: Duration,
    artifact_name: &str,
) -> BootOutcome {
    boot_kernel(disks, direct, true, timeout, artifact_name)
}

/// A disk on the machine's virtio-scsi controller at SCSI target `target`, LUN `lun`: in
/// the guest, SCSI address `H:0:target:lun`, H being the controller's host number.
#[derive(Clone, Copy, Debug)]
pub struct ScsiDisk<'a> {
    pub path: &'a Path,
    pub target: u8,
    pub lun: u8,
}

/// [`boot_networked`] with `scsi` on a virtio-scsi controller besides the virtio `disks`.
pub fn boot_networked_scsi(
    disks: &[&Path],
    scsi: &[ScsiDisk],
    direct: &DirectKernel,
    timeout: Duration,
    artifact_name: &str,
) -> BootOutcome {
    let mut machine = Machine::new(disks, Firmware::Bios, timeout, artifact_name);
    machine.direct = Some(direct);
    machine.network = true;
    machine.scsi = scsi;
    machine.boot()
}

/// [`boot_networked`] started in the background, with `memory_mib` of memory and QEMU's
/// user-mode network forwarding 127.0.0.1:HOST to the guest's port GUEST for each
/// `(HOST, GUEST)` of `forwards`: the test talks to the guest while it runs, then
/// [`Running::finish`] waits until it powers off (or `timeout` from now).
pub fn start_networked(
    disks: &[&Path],
    direct: &DirectKernel,
    forwards: &[(u16, u16)],
    memory_mib: u32,
    timeout: Duration,
    artifact_name: &str,
) -> Running {
    let mut machine = Machine::new(disks, Firmware::Bios, timeout, artifact_name);
    machine.direct = Some(direct);
    machine.network = true;
    machine.forwards = forwards;
    machine.memory_mib = memory_mib;
    start_machine(&machine)
}

/// What [`Machine::boot`] starts.
struct Machine<'a> {
    disks: &'a [&'a Path],
    /// Disks on a virtio-scsi controller (none: no controller).
    scsi: &'a [ScsiDisk<'a>],
    firmware: Firmware,
    direct: Option<&'a DirectKernel>,
    /// One virtio NIC on QEMU's user-mode network (none otherwise).
    network: bool,
    /// Host ports on 127.0.0.1 forwarded to guest ports, with `network`.
    forwards: &'a [(u16, u16)],
    memory_mib: u32,
    timeout: Duration,
    artifact_name: &'a str,
}

impl<'a> Machine<'a> {
    fn new(
        disks: &'a [&'a Path],
        firmware: Firmware,
        timeout: Duration,
        artifact_name: &'a str,
    ) -> Self {
        Machine {
            disks,
            scsi: &[],
            firmware,
            direct: None,
            network: false,
            forwards: &[],
            memory_mib: 768,
            timeout,
            artifact_name,
        }
    }

    fn boot(&self) -> BootOutcome {
        start_machine(self).finish()
    }
}

/// A QEMU started by [`start_networked`]: killed when dropped.
pub struct Running {
    child: ChildGuard,
    stderr_reader: std::thread::JoinHandle<String>,
    log: PathBuf,
    description: String,
    started: Instant,
    timeout: Duration,
    artifact_name: String,
    _scratch: TempDir,
}

impl Running {
    /// The console so far (carriage returns removed).
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).replace('\r', "")
    }

    /// Where the console log is kept.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether QEMU has exited (the guest powered off, or QEMU failed).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.child_mut().try_wait(), Ok(Some(_)))
    }

    /// Waits until the guest powers off, or kills it `timeout` after it started, and
    /// reads what its console showed.
    pub fn finish(mut self) -> BootOutcome {
        let left = self.timeout.saturating_sub(self.started.elapsed());
        let status = self.child.wait_timeout(left);
        drop(self.child);
        let elapsed = self.started.elapsed();
        let stderr = self.stderr_reader.join().expect("stderr reader thread");
        let (log, timeout, description) = (self.log, self.timeout, self.description);
        let artifact_name = self.artifact_name;

        let raw = fs::read(&log).unwrap_or_default();
        let mut serial = String::from_utf8_lossy(&raw).replace('\r', "");
        let trailer = match status {
            None => Some(format!("QEMU killed after {timeout:?} (time limit)")),
            Some(s) if !s.success() || !stderr.trim().is_empty() => {
                Some(format!("QEMU exited with {s}; stderr:\n{stderr}"))
            }
            Some(_) => None,
        };
        if let Some(trailer) = trailer {
            serial += &format!("\n--- {description}\n--- {trailer}\n");
            let _ = fs::write(&log, &serial);
        }
        let (run_output, run_rc) = parse_run(&serial);
        let booted = parse_booted(&serial);
        eprintln!(
            "{artifact_name}: {} after {elapsed:.1?} ({})",
            booted
                .as_deref()
                .map_or("nothing booted".to_owned(), |b| format!("{b} booted")),
            log.display()
        );
        BootOutcome {
            booted,
            run_output,
            run_rc,
            serial,
            log,
            elapsed,
            timed_out: status.is_none(),
        }
    }
}

fn start_machine(machine: &Machine) -> Running {
    let Machine {
        disks,
        scsi,
        firmware,
        direct,
        network,
        forwards,
        memory_mib,
        timeout,
        artifact_name,
    } = *machine;
    tools::require_tools(&["qemu-system-x86_64"]);
    let artifacts = crate::artifacts_dir();
    fs::create_dir_all(&artifacts)
        .unwrap_or_else(|e| panic!("creating {}: {e}", artifacts.display()));
    let log = artifacts.join(format!("{artifact_name}.log"));
    let _ = fs::remove_file(&log);
    let scratch = TempDir::new("qemu");

    let mut qemu = Command::new("qemu-system-x86_64");
    // Never -enable-kvm: guests hang with it on these machines. The default CPU model has
    // no RDRAND, so the guest's entropy pool fills slowly, as early in a real node's boot:
    // the bootctl run inside the guest proves it never waits for randomness.
    let mut nic = if network {
        "user,model=virtio-net-pci".to_owned()
    } else {
        "none".to_owned()
    };
    for (host, guest) in forwards {
        nic += &format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}");
    }
    qemu.args(["-m", &memory_mib.to_string(), "-smp", "1"])
        .args(["-nographic", "-no-reboot", "-monitor", "none", "-nic"])
        .arg(nic)
        .arg("-serial")
        .arg(format!("file:{}", log.display()));
    for disk in disks {
        qemu.arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()));
    }
    if !scsi.is_empty() {
        qemu.args(["-device", "virtio-scsi-pci,id=scsi0"]);
    }
    for (i, disk) in scsi.iter().enumerate() {
        qemu.arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=scsi-disk{i}",
                disk.path.display()
            ))
            .arg("-device")
            .arg(format!(
                "scsi-hd,drive=scsi-disk{i},bus=scsi0.0,scsi-id={},lun={}",
                disk.target, disk.lun
            ));
    }
    if firmware == Firmware::Uefi {
        tools::require_file(Path::new(OVMF_CODE));
        tools::require_file(Path::new(OVMF_VARS));
        let vars = scratch.join("OVMF_VARS.fd");
        fs::copy(OVMF_VARS, &vars).unwrap_or_else(|e| panic!("copying {OVMF_VARS}: {e}"));
        qemu.arg("-drive")
            .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    if let Some(direct) = direct {
        qemu.arg("-kernel")
            .arg(&direct.kernel)
            .arg("-initrd")
            .arg(&direct.initrd)
            .arg("-append")
            .arg(&direct.append);
    }
    qemu.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());

    let started = Instant::now();
    let description = cmd::describe(&qemu);
    let mut child = ChildGuard::spawn(&mut qemu);
    let mut stderr_pipe = child.child_mut().stderr.take().expect("stderr is piped");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    Running {
        child,
        stderr_reader,
        log,
        description,
        started,
        timeout,
        artifact_name: artifact_name.to_owned(),
        _scratch: scratch,
    }
}

fn marker_lines(serial: &str) -> impl Iterator<Item = (usize, &str)> {
    serial.lines().enumerate().filter_map(|(i, line)| {
        line.find(MARKER)
            .map(|at| (i, line[at + MARKER.len()..].trim()))
    })
}

fn parse_booted(serial: &str) -> Option<String> {
    marker_lines(serial).find_map(|(_, rest)| rest.strip_prefix("booted=").map(str::to_owned))
}

fn parse_run(serial: &str) -> (String, Option<i32>) {
    let lines: Vec<&str> = serial.lines().collect();
    let begin = marker_lines(serial).find(|(_, rest)| *rest == "run-begin");
    let end = marker_lines(serial).find_map(|(i, rest)| {
        rest.strip_prefix("run-end rc=")
            .map(|rc| (i, rc.trim().parse::<i32>().ok()))
    });
    match (begin, end) {
        (Some((b, _)), Some((e, rc))) if e > b => (lines[b + 1..e].join("\n"), rc),
        (Some((b, _)), _) => (lines[b + 1..].join("\n"), None),
        _ => (String::new(), None),
    }
}

/// Panics unless `expected` came up, naming `which` boot of a chain went wrong, what
/// came up instead (or that nothing did), and where the console log is.
pub fn expect_boot(outcome: &BootOutcome, expected: &str, which: &str) {
    if outcome.booted.as_deref() == Some(expected) {
        return;
    }
    let what = match (&outcome.booted, outcome.timed_out) {
        (Some(other), _) => format!("image {other:?} came up"),
        (None, true) => "no fixture image came up before the time limit".to_owned(),
        (None, false) => "no fixture image came up (the machine stopped)".to_owned(),
    };
    let tail: Vec<&str> = outcome.serial.lines().rev().take(25).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    panic!(
        "{which}: expected image {expected:?} to boot, but {what} after {:.1?}; console log: {}\n--- last lines ---\n{}",
        outcome.elapsed,
        outcome.log.display(),
        tail.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::{parse_booted, parse_run};

    const LOG: &str = "GRUB loading.\n\
        [    1.0] random kernel line\n\
        MULTIBOOT-FIXTURE booted=b\n\
        MULTIBOOT-FIXTURE run-begin\n\
        line one\n\
        line two\n\
        MULTIBOOT-FIXTURE run-end rc=3\n";

    #[test]
    fn markers_are_read_from_the_console() {
        assert_eq!(parse_booted(LOG).as_deref(), Some("b"));
        assert_eq!(parse_run(LOG), ("line one\nline two".to_owned(), Some(3)));
    }

    #[test]
    fn a_run_cut_short_keeps_its_output_and_no_exit_code() {
        let cut = LOG.split("MULTIBOOT-FIXTURE run-end").next().unwrap();
        assert_eq!(parse_run(cut), ("line one\nline two".to_owned(), None));
        assert_eq!(parse_booted("SeaBIOS\nBooting from Hard Disk...\n"), None);
        assert_eq!(parse_run("nothing"), (String::new(), None));
    }
}
