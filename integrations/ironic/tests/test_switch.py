"""The service step multiboot_switch: its arguments, which bootctl it runs, and through IPA."""

import stat

import pytest
from ironic_python_agent import errors
from ironic_python_agent.extensions import service

from multiboot_ironic import manager, switch


def argv(target="beta", mode=None, tries=None, multiboot=None, **extra):
    return switch.argv("/sbin/bootctl", target, mode, tries, multiboot, extra)


@pytest.mark.parametrize(
    ("kwargs", "command"),
    [
        ({}, ["switch", "--json", "--", "beta"]),
        ({"mode": "default"}, ["switch", "--json", "--", "beta"]),
        ({"mode": "once"}, ["switch", "--json", "--once", "--", "beta"]),
        ({"mode": "try"}, ["switch", "--json", "--try=1", "--", "beta"]),
        ({"mode": "try", "tries": 3}, ["switch", "--json", "--try=3", "--", "beta"]),
        ({"target": "1>0"}, ["switch", "--json", "--", "1>0"]),
        ({"target": "--help"}, ["switch", "--json", "--", "--help"]),
        (
            {"multiboot": "982d2de3-c796-472a-ad6f-5c7e035d3ccb"},
            [
                "--multiboot",
                "982d2de3-c796-472a-ad6f-5c7e035d3ccb",
                "switch",
                "--json",
                "--",
                "beta",
            ],
        ),
    ],
)
def test_bootctl_command_line(kwargs, command):
    assert argv(**kwargs) == ["/sbin/bootctl", *command]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"target": None}, "target must be a non-empty string"),
        ({"target": " "}, "target must be a non-empty string"),
        ({"target": 2}, "target must be a non-empty string"),
        ({"mode": "always"}, "mode must be one of"),
        ({"tries": 2}, 'tries is for mode "try"'),
        ({"mode": "try", "tries": 0}, "tries must be a whole number"),
        ({"mode": "try", "tries": True}, "tries must be a whole number"),
        ({"mode": "try", "tries": "2"}, "tries must be a whole number"),
        ({"multiboot": "/dev/sda2"}, "multiboot must be a filesystem UUID"),
        ({"image": "beta"}, "unknown argument(s) ['image']"),
    ],
)
def test_bad_arguments_refused(kwargs, says):
    with pytest.raises(errors.InvalidCommandParamsError, match=r"multiboot_switch: .*") as e:
        argv(**kwargs)
    assert says in str(e.value)


def _program(path, version):
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_systemds_bootctl_is_not_taken_for_ours(tmp_path, monkeypatch):
    monkeypatch.delenv(switch.BOOTCTL_ENV, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _program(bin_dir / "bootctl", "systemd 252 (252.30-1~deb12u2)")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert switch.bootctl_path(None) is None
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    ours = _program(sbin / "bootctl", "bootctl 0.1.0")
    assert switch.bootctl_path(str(sbin / "deployer")) == ours
    monkeypatch.setenv(switch.BOOTCTL_ENV, str(tmp_path / "missing"))
    assert switch.bootctl_path(str(sbin / "deployer")) is None


def test_failure_is_one_line_with_the_status(tmp_path):
    failing = tmp_path / "bootctl"
    failing.write_text(
        "#!/bin/sh\necho 'bootctl: warning' >&2\n"
        "echo 'bootctl: no entry matches \"gamma\"' >&2\nexit 3\n"
    )
    failing.chmod(failing.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(errors.ServicingError) as e:
        switch.run([str(failing), "switch", "--json", "--", "gamma"])
    assert 'bootctl switch exited with status 3: bootctl: no entry matches "gamma"' in str(e.value)


def test_offered_and_refused_through_ipa_service_extension(
    only_this_manager, monkeypatch, tmp_path
):
    """As IPA lists and runs service steps: its manager found by entry point."""
    monkeypatch.setenv(manager.DEPLOYER_ENV, _program(tmp_path / "deployer", "deployer 0.1.0"))
    extension = service.ServiceExtension()
    steps = extension.get_service_steps(node={}, ports=[]).join().command_result
    (offered,) = steps["service_steps"]["MultibootHardwareManager"]
    assert offered["step"] == "multiboot_switch"
    assert offered["interface"] == "deploy"
    assert offered["argsinfo"]["target"]["required"] is True
    step = {"interface": "deploy", "step": "multiboot_switch", "priority": 0, "args": {}}
    result = extension.execute_service_step(step=step, node={}, ports=[]).join()
    assert isinstance(result.command_error, errors.InvalidCommandParamsError)
    assert "target must be a non-empty string" in str(result.command_error)
