//! The Ironic plugin (integrations/ironic) as Ironic drives it: a real ironic-python-agent
//! (13.0.0, from scripts/setup's venv) runs on this machine with the plugin loaded through
//! its entry point and serves its REST API on 127.0.0.1, and the test posts the commands
//! Ironic's `custom-agent` deploy and servicing post, polling them as Ironic does:
//! `deploy.execute_deploy_step` with `multiboot_deploy` puts alpha and beta onto a loop
//! device (the node's disk), and the disk boots alpha in QEMU; then
//! `service.execute_service_step` with `multiboot_switch` chooses beta, and the disk boots
//! beta. A deploy step with an argument the step does not take, and one whose deploy
//! fails, end FAILED with the cause in `command_error`, as Ironic puts it in `last_error`.
//! The agent's log is kept in tests/artifacts/ironic-agent.log, the consoles in
//! ironic-agent-alpha.log and ironic-agent-beta.log. A missing tool or venv fails the test
//! and names `scripts/setup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::bootctl::static_bootctl;
use e2e::cmd::ChildGuard;
use e2e::deploy::{read_config, write_images_config};
use e2e::disk::LoopDisk;
use e2e::fixture::FixtureImage;
use e2e::ipa::{deploy_summary, AgentApi};
use e2e::net::{free_port, wait_until_listening};
use e2e::qemu::{self, expect_boot, Firmware};
use e2e::tmp::TempDir;
use e2e::tools::{require_deploy_tools, require_file};
use serde_json::{json, Value};

/// The token the agent is started with, as Ironic hands one to an agent on virtual media
/// (`ipa-agent-token`); every command carries it.
const TOKEN: &str = "multiboot-test-token";

/// One fixture boot under TCG, GRUB's menu waiting its default 5 s.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// A deploy of two fixture images onto a loop device takes seconds; the agent's start
/// about one.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// The node as Ironic sends it with each command (the fields the steps read).
fn node() -> Value {
    json!({
        "uuid": "0e1f1c3c-2f0c-4c11-9d0f-6b7f3a6c2a10",
        "instance_info": {},
        "driver_info": {},
        "properties": {},
    })
}

/// Starts the agent on a free port of 127.0.0.1 with its log at `log`; killed when the
/// guard is dropped.
fn start_agent(venv: &Path, log: &Path) -> (AgentApi, ChildGuard) {
    let port = free_port();
    let log = std::fs::File::create(log).expect("creating the agent's log");
    let mut command = Command::new(venv.join("bin/ironic-python-agent"));
    command
        // The deployer under test; the bootctl beside it (dynamically linked) for the
        // switch, the static build for the images (the deployer's default).
        .env("MULTIBOOT_DEPLOYER", env!("CARGO_BIN_EXE_deployer"))
        .args(["--config-file", "/dev/null", "--listen_host", "127.0.0.1"])
        .arg("--listen_port")
        .arg(port.to_string())
        .args(["--agent_token", TOKEN, "--noenable_auto_tls"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the agent's log"))
        .stderr(log);
    let process = ChildGuard::spawn(&mut command);
    wait_until_listening(port, "ironic-python-agent", Duration::from_secs(60));
    (AgentApi::new(port, TOKEN), process)
}

fn deploy_step(args: Value) -> Value {
    json!({
        "step": {"interface": "deploy", "step": "multiboot_deploy", "priority": 0, "args": args},
        "node": node(),
        "ports": [],
    })
}

/// Boots `disk` alone and panics unless `image` comes up (`which` boot, for the message).
fn boots(disk: &Path, image: &str, which: &str) {
    let artifact = format!("ironic-agent-{image}");
    let outcome = qemu::boot(disk, Firmware::Bios, BOOT_TIMEOUT, &artifact);
    expect_boot(&outcome, image, which);
}

fn venv() -> PathBuf {
    let venv = e2e::workspace_root().join("target/ironic-venv");
    require_file(&venv.join("bin/ironic-python-agent"));
    venv
}

#[test]
fn the_agent_deploys_through_the_plugin_and_switches_the_node_to_beta() {
    require_deploy_tools(&["rsync", "qemu-system-x86_64", "curl"]);
    let venv = venv();
    // The images get the static bootctl: the deployer finds it in its target directory.
    static_bootctl();
    let scratch = TempDir::new("ironic-agent");
    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    let config_path = write_images_config(
        scratch.path(),
        &[&alpha, &beta],
        "alpha",
        &[],
        "console=ttyS0 quiet panic=-1",
        240,
    );
    let provision: Value = read_config(&config_path);
    let disk_file = scratch.join("node.img");
    let disk = LoopDisk::create(&disk_file, (240 + 2 * 160) << 20);
    let device = disk.device().display().to_string();
    let (agent, agent_process) = start_agent(&venv, &e2e::artifacts_dir().join("ironic-agent.log"));
    let run = |name: &str, params: Value| agent.run(name, params, COMMAND_TIMEOUT);

    let record = run(
        "deploy.execute_deploy_step",
        deploy_step(json!({"provision": provision, "disks": {"vda": device}, "image": "x"})),
    );
    assert_eq!(record["command_status"], "FAILED", "{record}");
    let error = record["command_error"].to_string();
    assert!(error.contains("unknown argument(s) ['image']"), "{error}");

    let mut broken = provision.clone();
    broken["images"][1]["image_pull_url"] = json!(scratch.join("no-such-tree"));
    let record = run(
        "deploy.execute_deploy_step",
        deploy_step(json!({"provision": broken, "disks": {"vda": device}})),
    );
    assert_eq!(record["command_status"], "FAILED", "{record}");
    let error = record["command_error"].to_string();
    assert!(
        error.contains("deployer exited with status") && error.contains("no-such-tree"),
        "{error}"
    );

    let started = Instant::now();
    let record = run(
        "deploy.execute_deploy_step",
        deploy_step(json!({"provision": provision, "disks": {"vda": device}})),
    );
    assert_eq!(record["command_status"], "SUCCEEDED", "{record}");
    let summary = deploy_summary(&record, &["alpha", "beta"]);
    let multiboot = summary["multiboot_partition"]
        .as_str()
        .expect("a UUID")
        .to_owned();
    eprintln!(
        "ironic-agent: multiboot_deploy took {:.1?}",
        started.elapsed()
    );

    boots(&disk_file, "alpha", "the boot after multiboot_deploy");

    // Servicing boots the agent on the active node; the disk is the loop device again.
    disk.reread_partitions();
    let record = run(
        "service.execute_service_step",
        json!({
            "step": {"interface": "deploy", "step": "multiboot_switch", "priority": 0,
                     "args": {"target": "beta", "multiboot": multiboot}},
            "node": node(),
            "ports": [],
        }),
    );
    assert_eq!(record["command_status"], "SUCCEEDED", "{record}");
    let report = &record["command_result"]["service_result"];
    assert_eq!(
        report["target"]["image_name"],
        beta.image_name.as_str(),
        "{record}"
    );
    assert_eq!(report["target"]["default"], true, "{record}");
    drop(agent_process);
    drop(disk);

    boots(&disk_file, "beta", "the boot after multiboot_switch");
}
