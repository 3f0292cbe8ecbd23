"""The step running the real deployer (DEPLOYER_BIN) onto a disk-image file, as root."""

import os

import pytest
from ironic_python_agent import hardware

from multiboot_ironic import manager

BIN = os.environ.get("DEPLOYER_BIN")


@pytest.mark.skipif(not BIN, reason="DEPLOYER_BIN is unset: set it to a built deployer binary")
@pytest.mark.skipif(os.geteuid() != 0, reason="deployer deploy needs root (loop devices)")
def test_real_deploy_onto_disk_image(tmp_path, monkeypatch):
    monkeypatch.setenv(manager.DEPLOYER_ENV, BIN)
    tree = tmp_path / "tree"
    for d in ("boot", "etc", "sbin", "usr/bin"):
        (tree / d).mkdir(parents=True)
    (tree / "boot/vmlinuz-6.1.0-1-amd64").write_text("kernel")
    (tree / "boot/initrd.img-6.1.0-1-amd64").write_text("initrd")
    provision = {
        "images": [{"name": "one", "image_pull_url": tree.as_uri(), "target": "/"}],
        "partitions": [
            {
                "type": "disk",
                "id": {"type": "name", "value": "vda"},
                "size": "300 MiB",
                "volumes": [
                    {
                        "type": "partition",
                        "mount": "/",
                        "images": ["one"],
                        "file_system": "ext4",
                        "size": "100",
                    }
                ],
            }
        ],
        "partitions_policy": "clean",
    }
    hwm = manager.MultibootHardwareManager()
    assert hwm.evaluate_hardware_support() == hardware.HardwareSupport.SERVICE_PROVIDER
    disk = tmp_path / "node.img"
    summary = hwm.multiboot_deploy({}, [], provision=provision, disks={"vda": str(disk)})
    assert summary["deployed"] is True
    assert summary["exit"] == 0
    assert [i["name"] for i in summary["images"]] == ["one"]
    assert summary["disks"] == [{"name": "vda", "path": str(disk)}]
    assert disk.stat().st_size == 300 * 2**20
