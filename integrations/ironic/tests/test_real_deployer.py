"""The step running the real deployer (DEPLOYER_BIN) onto a disk-image file, as root."""

import json
import os
import subprocess

import pytest
from ironic_python_agent import errors, hardware

from multiboot_ironic import manager

BIN = os.environ.get("DEPLOYER_BIN")


real = pytest.mark.skipif(
    not BIN, reason="DEPLOYER_BIN is unset: set it to a built deployer binary"
)
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="deployer deploy needs root (loop devices)")


def _tree(path):
    for d in ("boot", "etc", "sbin", "usr/bin"):
        (path / d).mkdir(parents=True)
    (path / "boot/vmlinuz-6.1.0-1-amd64").write_text("kernel")
    (path / "boot/initrd.img-6.1.0-1-amd64").write_text("initrd")
    return path.as_uri()


def _provision(tmp_path, names):
    return {
        "images": [
            {"name": name, "image_pull_url": _tree(tmp_path / name), "target": "/"}
            for name in names
        ],
        "partitions": [
            {
                "type": "disk",
                "id": {"type": "name", "value": "vda"},
                "size": f"{200 + 100 * len(names)} MiB",
                "volumes": [
                    {
                        "type": "partition",
                        "mount": "/",
                        "images": [name],
                        "file_system": "ext4",
                        "size": "100",
                    }
                    for name in names
                ],
            }
        ],
        "partitions_policy": "clean",
    }


@real
@as_root
def test_real_deploy_onto_disk_image(tmp_path, monkeypatch):
    monkeypatch.setenv(manager.DEPLOYER_ENV, BIN)
    provision = _provision(tmp_path, ["one"])
    hwm = manager.MultibootHardwareManager()
    assert hwm.evaluate_hardware_support() == hardware.HardwareSupport.SERVICE_PROVIDER
    disk = tmp_path / "node.img"
    summary = hwm.multiboot_deploy({}, [], provision=provision, disks={"vda": str(disk)})
    assert summary["deployed"] is True
    assert summary["exit"] == 0
    assert [i["name"] for i in summary["images"]] == ["one"]
    assert summary["disks"] == [{"name": "vda", "path": str(disk)}]
    assert disk.stat().st_size == 300 * 2**20


@real
@as_root
def test_real_switch_on_the_deployed_disk(tmp_path, monkeypatch):
    """multiboot_switch runs the bootctl beside the deployer on the node's multiboot partition."""
    monkeypatch.setenv(manager.DEPLOYER_ENV, BIN)
    monkeypatch.delenv("MULTIBOOT_BOOTCTL", raising=False)
    hwm = manager.MultibootHardwareManager()
    disk = tmp_path / "node.img"
    summary = hwm.multiboot_deploy(
        {}, [], provision=_provision(tmp_path, ["one", "two"]), disks={"vda": str(disk)}
    )
    uuid = summary["multiboot_partition"]
    # The node's disk, as the agent sees it: a block device with its partitions.
    loop = subprocess.run(
        ["losetup", "--find", "--show", "--partscan", str(disk)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        # Without udev the kernel may not have read the partition table: partx adds the
        # partitions (and fails harmlessly when they are there).
        subprocess.run(["partx", "--add", loop], capture_output=True, check=False)
        report = hwm.multiboot_switch({}, [], target="two", multiboot=uuid)
        assert report["target"]["image_name"] == "two"
        assert report["target"]["default"] is True
        assert report["changed"]
        report = hwm.multiboot_switch({}, [], target="one", mode="once", multiboot=uuid)
        assert report["once"] is True
        assert report["target"]["next"] is True
        with pytest.raises(errors.ServicingError, match="exited with status 3: .*three"):
            hwm.multiboot_switch({}, [], target="three", multiboot=uuid)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=True)
    listing = subprocess.run(
        [os.path.join(os.path.dirname(BIN), "bootctl"), "--disk", str(disk), "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries = {e["image_name"]: e for e in json.loads(listing)["entries"]}
    assert entries["two"]["default"] and entries["one"]["next"]
