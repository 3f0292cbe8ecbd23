import copy
import functools
import http.server
import importlib.metadata
import json
import threading

import pytest
from conftest import DEPLOYED
from ironic_python_agent import errors, hardware
from ironic_python_agent.extensions import deploy

from multiboot_ironic import manager

CONFIG = {
    "images": [{"name": "alpha", "image_pull_url": "http://images.example/a.tar", "target": "/"}],
    "partitions": [
        {
            "type": "disk",
            "id": {"type": "name", "value": "vda"},
            "volumes": [{"type": "partition", "mount": "/", "images": ["alpha"], "size": "1"}],
        },
        {
            "type": "disk",
            "id": {"type": "scsi", "value": "0:0:1:0"},
            "volumes": [{"type": "partition", "mount": "/data", "images": ["alpha"], "size": "1"}],
        },
    ],
}


def device(name, serial, hctl=None, by_path=None):
    return hardware.BlockDevice(
        name, "disk", 10 * 2**30, False, serial=serial, hctl=hctl, by_path=by_path
    )


def test_entry_point_names_the_manager():
    points = importlib.metadata.entry_points(group="ironic_python_agent.hardware_managers")
    (point,) = [p for p in points if p.name == "multiboot"]
    assert point.load() is manager.MultibootHardwareManager


def test_supported_where_the_deployer_is(stub, hwm, tmp_path, monkeypatch):
    assert hwm.evaluate_hardware_support() == hardware.HardwareSupport.SERVICE_PROVIDER
    monkeypatch.setenv(manager.DEPLOYER_ENV, str(tmp_path / "missing"))
    assert hwm.evaluate_hardware_support() == hardware.HardwareSupport.NONE
    monkeypatch.delenv(manager.DEPLOYER_ENV)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert hwm.evaluate_hardware_support() == hardware.HardwareSupport.NONE
    (tmp_path / "bin").mkdir()
    stub.path.rename(tmp_path / "bin" / "deployer")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert hwm.evaluate_hardware_support() == hardware.HardwareSupport.SERVICE_PROVIDER


def test_deploy_step_offered(hwm):
    (step,) = hwm.get_deploy_steps({}, [])
    assert step["step"] == "multiboot_deploy"
    assert step["priority"] == 0
    assert step["interface"] == "deploy"
    assert step["reboot_requested"] is False
    assert set(step["argsinfo"]) == {"provision", "provision_url", "disks"}
    assert not any(a["required"] for a in step["argsinfo"].values())


def test_deploy_with_provision_and_disks(stub, hwm):
    disks = {"vda": "/dev/sdb", "0:0:1:0": "/dev/sdc"}
    summary = hwm.multiboot_deploy({}, [], provision=CONFIG, disks=disks)
    assert summary == DEPLOYED
    argv = stub.record["argv"]
    assert argv[0] == "deploy"
    assert argv[2:] == ["--disk", "vda=/dev/sdb", "--disk", "0:0:1:0=/dev/sdc", "--yes", "--json"]
    assert stub.record["config"] == CONFIG


def test_deploy_from_provision_url(stub, hwm, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(CONFIG))
    hwm.multiboot_deploy({}, [], provision_url=path.as_uri(), disks={"vda": "/dev/sda"})
    assert stub.record["config"] == CONFIG
    assert "--resolve-disks" not in stub.record["argv"]


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"provision": CONFIG, "disk": {"vda": "/dev/sda"}}, "unknown argument(s) ['disk']"),
        ({"provision": [CONFIG]}, "provision must be a JSON object, got list"),
        ({"provision_url": "ftp://x/p.json"}, "must be an http://, https:// or file:// URL"),
        ({"provision_url": 7}, "provision_url must be a non-empty string, got int"),
        ({"provision": CONFIG, "provision_url": "http://x/p.json"}, "not both"),
        ({"provision": CONFIG, "disks": ["/dev/sda"]}, "disks must be an object, got list"),
        ({"provision": CONFIG, "disks": {"vda": "sda"}}, "must map to an absolute path"),
    ],
)
def test_bad_arguments_refused_before_running(stub, hwm, kwargs, says):
    with pytest.raises(errors.InvalidCommandParamsError) as raised:
        hwm.multiboot_deploy({}, [], **kwargs)
    assert says in raised.value.details
    assert not stub.ran


def test_failed_deploy_names_step_and_errors_on_one_line(stub, hwm):
    failed = copy.deepcopy(DEPLOYED)
    failed.update(
        exit=1,
        deployed=False,
        images=[],
        errors=["grub-install: error: disk not found\nsecond line", "wiped the new tables"],
        failed_step="install GRUB for BIOS on disk vda",
    )
    stub.answer(failed, 1)
    with pytest.raises(errors.DeploymentError) as raised:
        hwm.multiboot_deploy({}, [], provision=CONFIG, disks={"vda": "/dev/sda"})
    details = raised.value.details
    assert "\n" not in details
    assert details == (
        "deployer exited with status 1; failed step: install GRUB for BIOS on disk vda; "
        "errors: grub-install: error: disk not found second line; wiped the new tables"
    )


def test_refused_config_carries_the_deployer_error(stub, hwm):
    refused = copy.deepcopy(DEPLOYED)
    refused.update(exit=3, deployed=False, images=[], errors=["images[0].target: required"])
    stub.answer(refused, 3)
    with pytest.raises(errors.DeploymentError, match=r"status 3; errors: images\[0\].target"):
        hwm.multiboot_deploy({}, [], provision=CONFIG, disks={"vda": "/dev/sda"})


def test_output_without_summary(stub, hwm, monkeypatch):
    stub.answer(None, 101)
    monkeypatch.setenv("STUB_STDERR", "thread 'main' panicked\nat src/main.rs\n")
    with pytest.raises(errors.DeploymentError) as raised:
        hwm.multiboot_deploy({}, [], provision=CONFIG, disks={"vda": "/dev/sda"})
    assert raised.value.details == (
        "deployer exited with status 101 without a JSON summary: at src/main.rs"
    )


def test_disks_from_inventory_and_root_device_hints(stub, hwm, monkeypatch):
    devices = [
        device("/dev/sda", "S1", hctl="0:0:0:0"),
        device("/dev/sdb", "S2", hctl="0:0:1:0"),
        device("/dev/sdc", "ROOT", hctl="0:0:2:0"),
    ]
    calls = []

    def dispatch(method, *args, **kwargs):
        calls.append(method)
        return devices

    monkeypatch.setattr(hardware, "dispatch_to_managers", dispatch)
    node = {"properties": {"root_device": {"serial": "ROOT"}}, "instance_info": {}}
    hwm.multiboot_deploy(node, [], provision=CONFIG)
    assert calls == ["list_block_devices"]
    assert stub.record["argv"][2:] == [
        "--disk",
        "vda=/dev/sdc",
        "--disk",
        "0:0:1:0=/dev/sdb",
        "--yes",
        "--json",
    ]


def test_disks_not_in_inventory_left_to_the_deployer(stub, hwm, monkeypatch):
    devices = [device("/dev/vda", "S1", by_path="/dev/disk/by-path/pci-0000:00:05.0")]
    monkeypatch.setattr(hardware, "dispatch_to_managers", lambda method: devices)
    hwm.multiboot_deploy({"properties": {}}, [], provision=CONFIG)
    assert stub.record["argv"][2:] == [
        "--disk",
        "vda=/dev/vda",
        "--resolve-disks",
        "--yes",
        "--json",
    ]


def test_root_device_hints_matching_nothing_fail(stub, hwm, monkeypatch):
    monkeypatch.setattr(hardware, "dispatch_to_managers", lambda method: [device("/dev/sda", "A")])
    node = {"instance_info": {"root_device": {"serial": "B"}}}
    with pytest.raises(errors.DeploymentError, match="no disk matches the root device hints"):
        hwm.multiboot_deploy(node, [], provision=CONFIG)
    assert not stub.ran


def test_through_ipa_deploy_extension(stub, only_this_manager):
    """The step as IPA runs it: its manager found by entry point, the step listed, then run."""
    extension = deploy.DeployExtension()
    steps = extension.get_deploy_steps(node={}, ports=[]).join().command_result
    assert "multiboot_deploy" in [
        s["step"] for s in steps["deploy_steps"]["MultibootHardwareManager"]
    ]
    step = {
        "interface": "deploy",
        "step": "multiboot_deploy",
        "priority": 0,
        "args": {"provision": CONFIG, "disks": {"vda": "/dev/sda"}},
    }
    result = extension.execute_deploy_step(step=step, node={}, ports=[]).join()
    assert result.command_error is None
    assert result.command_result["deploy_result"] == DEPLOYED
    step["args"] = {"provision": CONFIG, "bogus": 1}
    result = extension.execute_deploy_step(step=step, node={}, ports=[]).join()
    assert isinstance(result.command_error, errors.InvalidCommandParamsError)


class _Server:
    """Serves files on 127.0.0.1, as a Metal3 image server or Ironic's HTTP root would."""

    def __init__(self, directory):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    s = _Server(str(served))
    s.dir = served
    yield s
    s.close()
