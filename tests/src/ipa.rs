//! ironic-python-agent's REST API as Ironic's conductor uses it: commands posted to
//! `/v1/commands/` with the node's agent token, then polled until they leave RUNNING.
//! Spoken with curl, which the tests need anyway.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cmd;
use crate::qemu::Running;

/// An agent listening on 127.0.0.1:`port` (a QEMU port forward to the guest's 9999).
pub struct AgentApi {
    port: u16,
    token: String,
}

impl AgentApi {
    /// The agent on 127.0.0.1:`port`, whose commands carry `token` (the agent's
    /// `ipa-agent-token=`).
    pub fn new(port: u16, token: &str) -> AgentApi {
        AgentApi {
            port,
            token: token.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/v1/commands/{path}?agent_token={}",
            self.port, self.token
        )
    }

    /// Waits until the agent in `machine` answers `GET /v1/commands/`, as Ironic's first
    /// call after a heartbeat; panics quoting the console when the machine stops or
    /// `timeout` passes. Returns how long it took.
    pub fn wait_until_up(&self, machine: &mut Running, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let out = cmd::output(
                Command::new("curl")
                    .args(["-sS", "--fail", "--max-time", "10"])
                    .arg(self.url("")),
            );
            if out.status.success() {
                let answer: Result<Value, _> = serde_json::from_slice(&out.stdout);
                if answer.is_ok_and(|answer| answer["commands"].is_array()) {
                    return started.elapsed();
                }
            }
            let stopped = machine.exited();
            assert!(
                !stopped && started.elapsed() < timeout,
                "the agent did not answer on 127.0.0.1:{} ({}); console {}:\n{}",
                self.port,
                if stopped {
                    "the machine stopped".to_owned()
                } else {
                    format!("{timeout:?}")
                },
                machine.log().display(),
                crate::ramdisk::last_lines(&machine.console())
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Posts the command `name` with `params` without waiting, as Ironic does, and
    /// returns the agent's record of it.
    pub fn post(&self, name: &str, params: Value) -> Value {
        let body = json!({"name": name, "params": params}).to_string();
        let posted = curl(&[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
            &format!("{}&wait=false", self.url("")),
        ]);
        assert!(
            posted["id"].is_string(),
            "{name}: the agent answered {posted}"
        );
        posted
    }

    /// Runs the command `name` with `params` ([`AgentApi::post`], then polled as Ironic
    /// polls it) and returns its final record; panics if it still runs after `timeout`.
    pub fn run(&self, name: &str, params: Value, timeout: Duration) -> Value {
        let posted = self.post(name, params);
        let id = posted["id"].as_str().expect("an id");
        let deadline = Instant::now() + timeout;
        let mut record = posted.clone();
        while record["command_status"] == "RUNNING" {
            assert!(
                Instant::now() < deadline,
                "{name} still running after {timeout:?}: {record}"
            );
            std::thread::sleep(Duration::from_millis(500));
            record = curl(&[&self.url(id)]);
        }
        record
    }
}

/// The deployer's summary in the record of a `multiboot_deploy` that succeeded; panics
/// unless it deployed `images`, in this order, and names the multiboot partition.
pub fn deploy_summary<'r>(record: &'r Value, images: &[&str]) -> &'r Value {
    let summary = &record["command_result"]["deploy_result"];
    assert_eq!(summary["deployed"], true, "{record}");
    let names: Vec<&str> = summary["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|image| image["name"].as_str())
        .collect();
    assert_eq!(names, images, "{summary}");
    assert!(summary["multiboot_partition"].is_string(), "{summary}");
    summary
}

/// `curl -sS ARGS` and the JSON it printed.
fn curl(args: &[&str]) -> Value {
    let out = cmd::run(
        Command::new("curl")
            .args(["-sS", "--max-time", "60"])
            .args(args),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("curl {args:?}: not JSON ({e}): {out}"))
}
