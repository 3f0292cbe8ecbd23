//! The IPA flavour of the deploy ramdisk (`packaging/ramdisk --ipa`), booted for real as
//! Ironic boots a node's agent and driven through ironic-python-agent's REST API as
//! Ironic's conductor drives it. QEMU (TCG) loads its vmlinuz and initrd.img with
//! `ipa-agent-token=` (no `ipa-api-url=`: without an Ironic to look up, IPA 13 still
//! serves its API, and commands need the token), one blank virtio disk and a NIC on
//! QEMU's user-mode network whose port 9999 (the agent's) is forwarded from a free port on
//! 127.0.0.1. Ironic's calls of a custom-agent deploy follow: `deploy.get_deploy_steps`,
//! then `deploy.execute_deploy_step` with `multiboot_deploy` and the config inline, its two
//! fixture images (tar.zst) served over HTTP from this machine (the guest's 10.0.2.2),
//! polled until it ends; first with a config whose image URL answers 404 (FAILED, the
//! cause in `command_error`), then the right one (SUCCEEDED, the deployer's summary in
//! `command_result`). `standby.power_off` turns the machine off, and the disk boots alpha
//! alone. The ramdisk boots again on the deployed disk for servicing:
//! `service.get_service_steps`, then `service.execute_service_step` with
//! `multiboot_switch` to beta; power off, and the disk boots beta.
//!
//! Opt-in, as it builds the ramdisk (about 30 s once the venv of the agent is cached,
//! 5 minutes before) and boots four times under TCG (a few minutes in all):
//!
//! ```text
//! cargo nextest run -p deployer --test ironic_ramdisk --run-ignored only
//! ```
//!
//! The consoles are kept in tests/artifacts/ironic-ramdisk-*.log. A missing tool fails
//! the test and names `scripts/setup`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::deploy::{read_config, write_images_config};
use e2e::disk::sha256;
use e2e::fixture::FixtureImage;
use e2e::http::HttpServer;
use e2e::ipa::{deploy_summary, AgentApi};
use e2e::net::free_port;
use e2e::qemu::{self, expect_boot, DirectKernel, Firmware, Running};
use e2e::ramdisk::{build_ipa_ramdisk, guest_url, last_lines, pack_tar_zst};
use e2e::tmp::TempDir;
use e2e::tools::require_tools;
use serde_json::{json, Value};

/// The agent token on the kernel command line, as Ironic passes one to an agent it
/// boots; every command carries it.
const TOKEN: &str = "multiboot-ramdisk-test-token-0123456789";

/// The port ironic-python-agent listens on in the guest.
const AGENT_PORT: u16 = 9999;

/// One boot of the IPA ramdisk, from QEMU's start to the power-off the test asks for:
/// about 200 MB to unpack, the agent's start (about 20 s on an idle machine), a deploy.
const RAMDISK_TIMEOUT: Duration = Duration::from_secs(1200);

/// The agent's start under TCG, from QEMU's start.
const AGENT_START_TIMEOUT: Duration = Duration::from_secs(600);

/// One command (a deploy of two fixture images over HTTP, a switch).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// One fixture boot of the deployed disk.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// The node's disk. IPA's generic hardware manager waits at its start for a disk of at
/// least 4 GiB to install onto: a sparse 5 GiB spares that wait.
const DISK_BYTES: u64 = 5 << 30;

/// The guest's memory: the ramdisk unpacks into it, and the agent's Python runs there.
const MEMORY_MIB: u32 = 1536;

/// The node as Ironic sends it with each command (the fields the steps read).
fn node() -> Value {
    json!({
        "uuid": "6d1b3c52-8f4e-4f0a-9a57-3c2e8d1f0b44",
        "instance_info": {},
        "driver_info": {},
        "properties": {},
    })
}

/// Boots the IPA ramdisk on `disk` in the background, its console kept as
/// tests/artifacts/ironic-ramdisk-`artifact`.log, and waits until the agent answers.
fn start_agent(kernel: &(PathBuf, PathBuf), disk: &Path, artifact: &str) -> (Running, AgentApi) {
    let port = free_port();
    let direct = DirectKernel {
        kernel: kernel.0.clone(),
        initrd: kernel.1.clone(),
        append: format!("console=ttyS0 panic=-1 ipa-agent-token={TOKEN}"),
    };
    let mut machine = qemu::start_networked(
        &[disk],
        &direct,
        &[(port, AGENT_PORT)],
        MEMORY_MIB,
        RAMDISK_TIMEOUT,
        &format!("ironic-ramdisk-{artifact}"),
    );
    let api = AgentApi::new(port, TOKEN);
    let took = api.wait_until_up(&mut machine, AGENT_START_TIMEOUT);
    eprintln!("ironic-ramdisk: the agent answered {took:.1?} after QEMU started ({artifact})");
    (machine, api)
}

/// Asks the agent to power the machine off, as Ironic's tear-down does, and waits until
/// it is off.
fn power_off(machine: Running, api: &AgentApi, which: &str) {
    let posted = api.post("standby.power_off", json!({}));
    assert_eq!(posted["command_name"], "power_off", "{posted}");
    let outcome = machine.finish();
    assert!(
        !outcome.timed_out && outcome.serial.contains("ramdisk: poweroff asked for"),
        "{which}: the agent's power_off did not power off; console {}:\n{}",
        outcome.log.display(),
        last_lines(&outcome.serial)
    );
}

/// The names of the steps in `steps`, the agent's `{manager: [step, ...]}`.
fn step_names(steps: &Value) -> Vec<&str> {
    steps
        .as_object()
        .into_iter()
        .flat_map(|managers| managers.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|step| step["step"].as_str())
        .collect()
}

/// Panics unless `record` (a command's final record) SUCCEEDED, quoting it.
#[track_caller]
fn succeeded(record: &Value, machine: &Running) {
    assert_eq!(
        record["command_status"],
        "SUCCEEDED",
        "{record}\nconsole {}:\n{}",
        machine.log().display(),
        last_lines(&machine.console())
    );
}

/// The two fixture images as tar.zst on an HTTP server for the guest, and the config
/// that deploys them (alpha the default) onto the guest's vda; and the same config with
/// beta's URL one the server answers 404 for.
fn images(scratch: &Path) -> (HttpServer, Value, Value) {
    let alpha = FixtureImage::new("alpha");
    let beta = FixtureImage::new("beta");
    let config_path = write_images_config(
        scratch,
        &[&alpha, &beta],
        "alpha",
        &[],
        "console=ttyS0 quiet panic=-1",
        240,
    );
    let mut config: Value = read_config(&config_path);
    let mut files = BTreeMap::new();
    let mut tarballs = BTreeMap::new();
    for name in ["alpha", "beta"] {
        let tarball = scratch.join(format!("{name}.tar.zst"));
        pack_tar_zst(&scratch.join(name), &tarball);
        files.insert(
            format!("{name}.tar.zst"),
            std::fs::read(&tarball).expect("a tarball"),
        );
        tarballs.insert(name.to_owned(), tarball);
    }
    let server = HttpServer::serve(files);
    for image in config["images"].as_array_mut().expect("images") {
        let name = image["name"].as_str().expect("a name").to_owned();
        image["image_pull_url"] = guest_url(&server.url(&format!("{name}.tar.zst"))).into();
        image["sha256"] = sha256(&tarballs[&name]).into();
    }
    let mut missing = config.clone();
    missing["images"][1]["image_pull_url"] = guest_url(&server.url("missing.tar.zst")).into();
    (server, config, missing)
}

#[test]
#[ignore = "builds the IPA ramdisk and boots four times under TCG (minutes): run with --run-ignored only"]
fn ironic_python_agent_in_the_ramdisk_deploys_then_switches_the_node_to_beta() {
    require_tools(&["qemu-system-x86_64", "tar", "curl"]);
    let started = Instant::now();
    let scratch = TempDir::new("ironic-ramdisk");
    let kernel = build_ipa_ramdisk(&scratch.join("dist"));
    let (_server, config, missing) = images(scratch.path());
    let disk = scratch.join("node.img");
    std::fs::File::create(&disk)
        .and_then(|file| file.set_len(DISK_BYTES))
        .expect("creating the blank disk");

    let (machine, api) = start_agent(&kernel, &disk, "deploy");
    // Ironic asks for the steps first and hands their managers' versions back with each.
    let steps = api.run(
        "deploy.get_deploy_steps",
        json!({"node": node(), "ports": []}),
        COMMAND_TIMEOUT,
    );
    succeeded(&steps, &machine);
    let result = &steps["command_result"];
    assert!(
        step_names(&result["deploy_steps"]).contains(&"multiboot_deploy"),
        "{steps}"
    );
    let version = result["hardware_manager_version"].clone();
    let deploy = |provision: &Value| {
        json!({
            "step": {"interface": "deploy", "step": "multiboot_deploy", "priority": 0,
                     "args": {"provision": provision, "disks": {"vda": "/dev/vda"}}},
            "node": node(),
            "ports": [],
            "deploy_version": version,
        })
    };

    let record = api.run(
        "deploy.execute_deploy_step",
        deploy(&missing),
        COMMAND_TIMEOUT,
    );
    assert_eq!(record["command_status"], "FAILED", "{record}");
    let error = record["command_error"].to_string();
    assert!(
        error.contains("deployer exited with status 3")
            && error.contains("missing.tar.zst: HTTP 404 Not Found"),
        "the failed deploy's error: {error}"
    );

    let deploying = Instant::now();
    let record = api.run(
        "deploy.execute_deploy_step",
        deploy(&config),
        COMMAND_TIMEOUT,
    );
    succeeded(&record, &machine);
    deploy_summary(&record, &["alpha", "beta"]);
    eprintln!(
        "ironic-ramdisk: multiboot_deploy took {:.1?}",
        deploying.elapsed()
    );
    power_off(machine, &api, "after the deploy");

    let booted = qemu::boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "ironic-ramdisk-alpha");
    expect_boot(&booted, "alpha", "the disk the agent deployed");

    // Servicing: the agent boots on the active node, whose disk holds the deploy.
    let (machine, api) = start_agent(&kernel, &disk, "service");
    let steps = api.run(
        "service.get_service_steps",
        json!({"node": node(), "ports": []}),
        COMMAND_TIMEOUT,
    );
    succeeded(&steps, &machine);
    assert!(
        step_names(&steps["command_result"]["service_steps"]).contains(&"multiboot_switch"),
        "{steps}"
    );
    let version = steps["command_result"]["hardware_manager_version"].clone();
    let record = api.run(
        "service.execute_service_step",
        json!({
            "step": {"interface": "deploy", "step": "multiboot_switch", "priority": 0,
                     "args": {"target": "beta"}},
            "node": node(),
            "ports": [],
            "service_version": version,
        }),
        COMMAND_TIMEOUT,
    );
    succeeded(&record, &machine);
    let report = &record["command_result"]["service_result"];
    assert_eq!(report["target"]["image_name"], "image-beta-1.0", "{record}");
    assert_eq!(report["target"]["default"], true, "{record}");
    power_off(machine, &api, "after the switch");

    let booted = qemu::boot(&disk, Firmware::Bios, BOOT_TIMEOUT, "ironic-ramdisk-beta");
    expect_boot(&booted, "beta", "the disk after multiboot_switch");
    eprintln!(
        "ironic-ramdisk: the whole test took {:.1?}",
        started.elapsed()
    );
}
