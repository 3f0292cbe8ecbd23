//! The deployer's `--json` output follows its JSON Schemas (`docs/schema/deployer-*.v1.json`,
//! see `e2e::schema`): real runs of the built deployer, `validate` and `plan` on every
//! example config (against sparse disk-image files) and on broken ones, and the summary of
//! `deploy --json` for deploys that stop before any write. A real deploy's summary is
//! checked by `output_real`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use e2e::schema::{check, names};
use serde_json::Value;

const GIB: u64 = 1 << 30;

/// Runs the deployer with `args` (stdin closed), expects `status`, checks stdout against
/// `docs/schema/<schema>` and returns it.
fn run(args: &[&str], status: i32, schema: &str) -> Value {
    let (code, value) = run_any(args, schema);
    assert_eq!(code, status, "deployer {}: {value:#}", args.join(" "));
    value
}

/// Runs the deployer with `args` (stdin closed), checks stdout against
/// `docs/schema/<schema>`, returns the exit status and stdout.
fn run_any(args: &[&str], schema: &str) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_deployer"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running deployer");
    let command = format!("deployer {}", args.join(" "));
    let code = out.status.code().unwrap_or_else(|| {
        panic!(
            "`{command}` died: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let value: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("`{command}` printed no JSON: {err}"));
    check(schema, &command, &value);
    (code, value)
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

/// A sparse disk-image file of `size` bytes in `dir`, as `--disk NAME=PATH`.
fn disk(dir: &Path, name: &str, size: u64) -> String {
    let path: PathBuf = dir.join(format!("{}.img", name.replace(['/', ':'], "_")));
    std::fs::File::create(&path)
        .and_then(|file| file.set_len(size))
        .expect("creating a sparse disk image");
    format!("{name}={}", path.display())
}

#[test]
fn validate_and_plan_of_every_example_follow_their_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples: [(&str, &[&str]); 5] = [
        ("multi-image.json", &["vda"]),
        ("demo.json", &["vda"]),
        ("every-filesystem.json", &["vda"]),
        (
            "lvm.json",
            &["disk/by-path/pci-0000:00:07.0-virtio-pci-virtio3"],
        ),
        ("raid.json", &["sda", "6:1:0:0"]),
    ];
    for (name, disk_names) in examples {
        let config = example(name);
        let report = run(
            &["validate", "--json", &config],
            0,
            "deployer-validate.v1.json",
        );
        assert_eq!(report["valid"], true, "{name}");
        let disks: Vec<String> = disk_names
            .iter()
            .map(|disk_name| disk(dir.path(), disk_name, 40 * GIB))
            .collect();
        let plan_args = |config: &str| -> Vec<String> {
            let mut args: Vec<String> = ["plan", "--json", config].map(String::from).into();
            for disk in &disks {
                args.extend(["--disk".to_owned(), disk.clone()]);
            }
            args
        };
        let mut value: Value =
            serde_json::from_str(&std::fs::read_to_string(&config).expect("reading the example"))
                .expect("the example is JSON");
        if value["partitions_policy"] != "clean" {
            // Bareon's default, verify, keeps the tables: the blank disks are refused, each
            // by a planning error.
            let args = plan_args(&config);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let errors = run(&args, 3, "deployer-plan-errors.v1.json");
            assert_eq!(
                errors["errors"].as_array().map(Vec::len),
                Some(disk_names.len()),
                "{name}: {errors}"
            );
            value["partitions_policy"] = Value::from("clean");
        }
        let clean = dir.path().join(name);
        std::fs::write(&clean, value.to_string()).expect("writing the config");
        let args = plan_args(clean.to_str().expect("UTF-8 path"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let plan = run(&args, 0, "deployer-plan.v1.json");
        assert_eq!(plan["version"], 1, "{name}");
        if ["multi-image.json", "lvm.json"].contains(&name) {
            let bareon = [&args[..], &["--layout", "bareon"]].concat();
            let plan = run(&bareon, 0, "deployer-plan.v1.json");
            assert_eq!(plan["layout"], "bareon", "{name}");
        }
    }
}

#[test]
fn errors_follow_their_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut bad_configs: Vec<PathBuf> = std::fs::read_dir(&bad)
        .expect("reading tests/bad")
        .map(|entry| entry.expect("reading tests/bad").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    bad_configs.sort();
    assert!(bad_configs.len() > 10, "{bad_configs:?}");
    let mut invalid = 0;
    for config in &bad_configs {
        let config = config.to_str().expect("UTF-8 path");
        // Some are valid, and fail only in the plan.
        let (code, report) = run_any(&["validate", "--json", config], "deployer-validate.v1.json");
        assert_eq!(report["valid"], code == 0, "{config}: status {code}");
        invalid += usize::from(code == 3);
    }
    assert!(invalid > 10, "{invalid} invalid configs");

    // Valid, but the disk is too small; a --disk the config does not have.
    let config = example("multi-image.json");
    let small = disk(dir.path(), "vda", 1 << 30);
    let errors = run(
        &["plan", "--json", &config, "--disk", &small],
        3,
        "deployer-plan-errors.v1.json",
    );
    assert!(errors["errors"][0]["path"].is_string(), "{errors:#}");
    let other = disk(dir.path(), "vdb", 20 * GIB);
    let errors = run(
        &["plan", "--json", &config, "--disk", &other],
        3,
        "deployer-plan-errors.v1.json",
    );
    assert!(
        errors["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|error| error["disk"] == "vdb")),
        "{errors:#}"
    );
}

/// Deploys that stop before any write still print their summary.
#[test]
fn a_deploy_that_stops_early_prints_its_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = example("multi-image.json");
    let node = dir.path().join("node.img");
    let vda = format!("vda={}", node.display());
    let bootctl = dir.path().join("bootctl");
    std::fs::write(&bootctl, "#!/bin/sh\n").expect("writing a stand-in bootctl");
    // The example's images are not on this host.
    let unsourced = run(
        &[
            "deploy",
            "--json",
            &config,
            "--disk",
            &vda,
            "--bootctl",
            bootctl.to_str().expect("UTF-8"),
        ],
        3,
        "deployer-deploy.v1.json",
    );
    assert_eq!(unsourced["deployed"], false);
    assert_eq!(unsourced["disks"][0]["path"], node.display().to_string());
    assert_eq!(unsourced["images"], serde_json::json!([]));
    assert_eq!(unsourced["boot_info"], Value::Null);
    let invalid = dir.path().join("invalid.json");
    std::fs::write(&invalid, "{}").expect("writing a config");
    let refused = run(
        &[
            "deploy",
            "--json",
            invalid.to_str().expect("UTF-8"),
            "--disk",
            &vda,
            "--yes",
        ],
        3,
        "deployer-deploy.v1.json",
    );
    assert_eq!(refused["exit"], 3);
    assert!(!node.exists(), "nothing written");
}

/// deployer(8) names its schemas, and every deployer schema is named there.
#[test]
fn the_man_page_names_every_schema() {
    let page = e2e::manpage::read("man/sections/deployer.8.roff");
    let deployer_schemas: Vec<String> = names()
        .into_iter()
        .filter(|name| name.starts_with("deployer-"))
        .collect();
    assert_eq!(deployer_schemas.len(), 4, "{deployer_schemas:?}");
    for name in deployer_schemas {
        let roff = name.replace('-', "\\-");
        assert!(page.contains(&roff), "deployer(8) does not name {name}");
    }
}
