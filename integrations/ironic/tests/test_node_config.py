"""multiboot_deploy without arguments: the config from the node (bareon-ironic, Metal3)."""

import hashlib
import json

import pytest
from ironic_python_agent import errors
from test_manager import CONFIG, server  # noqa: F401 (a fixture)

from multiboot_ironic import config

LAYOUT = {"partitions": CONFIG["partitions"], "partitions_policy": "clean"}
DISKS = {"vda": "/dev/sda", "0:0:1:0": "/dev/sdb"}
SHA = "ab" * 32


def write(directory, name, value):
    (directory / name).write_text(json.dumps(value))


def test_metal3_image_source_names_the_config(stub, hwm, server):  # noqa: F811
    write(server.dir, "provision.json", CONFIG)
    node = {"instance_info": {"image_source": f"{server.url}/provision.json"}}
    hwm.multiboot_deploy(node, [], disks=DISKS)
    assert stub.record["config"] == CONFIG


@pytest.mark.parametrize("algo", ["md5", "sha256", "sha512"])
def test_metal3_checksum_checks_the_config(stub, hwm, server, algo):  # noqa: F811
    write(server.dir, "provision.json", CONFIG)
    body = (server.dir / "provision.json").read_bytes()
    info = {
        "image_source": f"{server.url}/provision.json",
        "image_os_hash_algo": algo,
        "image_os_hash_value": hashlib.new(algo, body).hexdigest().upper(),
    }
    hwm.multiboot_deploy({"instance_info": info}, [], disks=DISKS)
    assert stub.record["config"] == CONFIG
    stub.record_path.unlink()
    info["image_os_hash_value"] = "0" * len(info["image_os_hash_value"])
    with pytest.raises(
        errors.DeploymentError, match=rf"provision.json: {algo} is [0-9a-f]+, expected 0+$"
    ):
        hwm.multiboot_deploy({"instance_info": info}, [], disks=DISKS)
    assert not stub.ran


def test_metal3_checksum_file_and_auto_type(stub, hwm, server):  # noqa: F811
    write(server.dir, "provision.json", CONFIG)
    digest = hashlib.sha256((server.dir / "provision.json").read_bytes()).hexdigest()
    (server.dir / "SHA256SUMS").write_text(f"{'1' * 64}  other.json\n{digest} *provision.json\n")
    info = {
        "image_source": f"{server.url}/provision.json",
        "image_os_hash_algo": None,
        "image_os_hash_value": f"{server.url}/SHA256SUMS",
    }
    hwm.multiboot_deploy({"instance_info": info}, [], disks=DISKS)
    assert stub.record["config"] == CONFIG
    stub.record_path.unlink()
    (server.dir / "SHA256SUMS").write_text(f"{digest}  other.json\n")
    with pytest.raises(errors.DeploymentError, match="SHA256SUMS: no checksum for provision.json"):
        hwm.multiboot_deploy({"instance_info": info}, [], disks=DISKS)
    info["image_os_hash_value"] = "abc"
    with pytest.raises(errors.DeploymentError, match="'abc' is no md5, sha256 or sha512"):
        hwm.multiboot_deploy({"instance_info": info}, [], disks=DISKS)
    assert not stub.ran


def test_bareon_sources_merged_by_priority(stub, hwm, server):  # noqa: F811
    write(server.dir, "instance.json", {"partitions_policy": "verify", "images": CONFIG["images"]})
    write(server.dir, "node.json", LAYOUT)
    node = {
        "instance_info": {"deploy_config_options": {"instance": f"{server.url}/instance.json"}},
        "driver_info": {"deploy_config": f"{server.url}/node.json"},
    }
    hwm.multiboot_deploy(node, [], disks=DISKS)
    assert stub.record["config"] == {
        "partitions": CONFIG["partitions"],
        "partitions_policy": "verify",
        "images": CONFIG["images"],
    }


def test_image_source_is_the_one_image_of_a_config_without_images(stub, hwm, server):  # noqa: F811
    write(server.dir, "layout.json", LAYOUT)
    node = {
        "instance_info": {
            "deploy_config_options": {"node": f"{server.url}/layout.json"},
            "image_source": "http://images.example/debian.tar.zst",
            "image_os_hash_algo": "sha256",
            "image_os_hash_value": SHA,
        }
    }
    hwm.multiboot_deploy(node, [], disks=DISKS)
    assert stub.record["config"]["images"] == [
        {
            "name": "http://images.example/debian.tar.zst",
            "image_pull_url": "http://images.example/debian.tar.zst",
            "target": "/",
            "boot": True,
            "sha256": SHA,
        }
    ]


def test_bareon_ironic_image_records(stub, hwm):
    images = [
        {"name": "a", "url": "http://images.example/a.tar", "target": "/"},
        {"name": "b", "url": "http://images.example/b.tar", "target": "/"},
    ]
    node = {
        "instance_info": {
            "deploy_config_options": {"instance": dict(LAYOUT, images=images)},
            "image_source": "http://images.example/b.tar",
        }
    }
    hwm.multiboot_deploy(node, [], disks=DISKS)
    got = stub.record["config"]["images"]
    assert [i["image_pull_url"] for i in got] == [i["url"] for i in images]
    assert [i["boot"] for i in got] == [False, True]


def test_ramdisk_default_config(stub, hwm, tmp_path, monkeypatch):
    write(tmp_path, "default.json", CONFIG)
    monkeypatch.setenv(config.DEFAULT_CONFIG_ENV, str(tmp_path / "default.json"))
    hwm.multiboot_deploy({"instance_info": {}}, [], disks=DISKS)
    assert stub.record["config"] == CONFIG


@pytest.mark.parametrize(
    "instance_info, says",
    [
        ({}, "no provision.json: give the step's provision or provision_url"),
        ({"deploy_config_options": {"glance": "x"}}, "unknown source(s) ['glance']"),
        ({"deploy_config_options": {"instance": "glance://x"}}, "must be an http://, https://"),
        (
            {"deploy_config_options": {"instance": "{not json"}},
            "deploy config (instance): not JSON",
        ),
        ({"deploy_config_options": {"instance": LAYOUT}}, "no images and instance_info no image"),
    ],
)
def test_node_without_a_usable_config(stub, hwm, instance_info, says):
    with pytest.raises(errors.DeploymentError) as raised:
        hwm.multiboot_deploy({"instance_info": instance_info}, [], disks=DISKS)
    assert says in raised.value.details
    assert not stub.ran


def test_config_url_not_found(stub, hwm, server):  # noqa: F811
    node = {"instance_info": {"image_source": f"{server.url}/missing.json"}}
    with pytest.raises(errors.DeploymentError, match="cannot fetch: 404"):
        hwm.multiboot_deploy(node, [], disks=DISKS)
