"""The hardware manager: a deploy step that runs `deployer deploy` on the node's disks."""

import json
import os
import shutil
import subprocess
import tempfile

from ironic_python_agent import device_hints, errors, hardware
from oslo_log import log

from multiboot_ironic import config as cfg
from multiboot_ironic import switch

LOG = log.getLogger(__name__)

# The deployer binary when it is not `deployer` on PATH.
DEPLOYER_ENV = "MULTIBOOT_DEPLOYER"

DEPLOY_ARGSINFO = {
    "provision": {
        "description": "The provision.json, as a JSON object.",
        "required": False,
    },
    "provision_url": {
        "description": "An http://, https:// or file:// URL of the provision.json.",
        "required": False,
    },
    "disks": {
        "description": (
            "The device of each of the config's disks, as an object mapping a disk's id "
            'value to a device path ({"vda": "/dev/sda"}). Without it, the disks are '
            "mapped through the inventory and root device hints, the rest by the deployer."
        ),
        "required": False,
    },
}


def deployer_path():
    """The deployer binary, or None."""
    override = os.environ.get(DEPLOYER_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("deployer")


def _one_line(text):
    return " ".join(str(text).split())


def _check_args(provision, provision_url, disks, extra):
    """Raise InvalidCommandParamsError for what the step cannot take, before any work."""
    problems = []
    if extra:
        problems.append(f"unknown argument(s) {sorted(extra)}; known: {sorted(DEPLOY_ARGSINFO)}")
    if provision is not None and not isinstance(provision, dict):
        problems.append(f"provision must be a JSON object, got {type(provision).__name__}")
    if provision_url is not None:
        problem = cfg.check_url(provision_url, "provision_url")
        if problem:
            problems.append(problem)
    if provision is not None and provision_url is not None:
        problems.append("give provision or provision_url, not both")
    if disks is not None:
        if not isinstance(disks, dict):
            problems.append(f"disks must be an object, got {type(disks).__name__}")
        else:
            for name, path in disks.items():
                if not name or "=" in name:
                    problems.append(f"disks: {name!r} is not a disk id")
                if not isinstance(path, str) or not path.startswith("/"):
                    problems.append(f"disks: {name!r} must map to an absolute path, got {path!r}")
    if problems:
        raise errors.InvalidCommandParamsError("multiboot_deploy: " + "; ".join(problems))


def _disk_args(config, node, disks):
    """The deployer's disk arguments: --disk NAME=PATH pairs, --resolve-disks for the rest."""
    if disks:
        mapping, unresolved = dict(disks), False
    else:
        devices = hardware.dispatch_to_managers("list_block_devices")
        node = node or {}
        hints = (node.get("instance_info") or {}).get("root_device") or (
            node.get("properties") or {}
        ).get("root_device")
        root = None
        if hints:
            try:
                found = device_hints.match_root_device_hints(
                    [d.serialize() for d in devices], hints
                )
            except ValueError as e:
                raise errors.DeploymentError(f"root device hints {hints}: {e}") from e
            if not found:
                raise errors.DeploymentError(f"no disk matches the root device hints {hints}")
            root = found["name"]
        mapping, unresolved = cfg.map_disks(config, devices, root)
    args = []
    for name, path in mapping.items():
        args += ["--disk", f"{name}={path}"]
    if unresolved or not mapping:
        args.append("--resolve-disks")
    return args


def _failure(status, summary, stderr):
    """The DeploymentError for a deploy that did not deploy: one line for last_error."""
    if summary is None:
        lines = [line for line in stderr.splitlines() if line.strip()]
        tail = lines[-1] if lines else "no output"
        return errors.DeploymentError(
            _one_line(f"deployer exited with status {status} without a JSON summary: {tail}")
        )
    text = f"deployer exited with status {summary.get('exit', status)}"
    if summary.get("failed_step"):
        text += f"; failed step: {summary['failed_step']}"
    errs = summary.get("errors") or []
    if errs:
        text += "; errors: " + "; ".join(str(e) for e in errs)
    return errors.DeploymentError(_one_line(text))


class MultibootHardwareManager(hardware.HardwareManager):
    """Offers multiboot_deploy, and multiboot_switch to active nodes, where the deployer is."""

    HARDWARE_MANAGER_NAME = "MultibootHardwareManager"
    HARDWARE_MANAGER_VERSION = "1"

    def evaluate_hardware_support(self):
        if deployer_path():
            return hardware.HardwareSupport.SERVICE_PROVIDER
        return hardware.HardwareSupport.NONE

    def get_deploy_steps(self, node, ports):
        return [
            {
                "step": "multiboot_deploy",
                "priority": 0,
                "interface": "deploy",
                "reboot_requested": False,
                "argsinfo": DEPLOY_ARGSINFO,
            }
        ]

    def get_service_steps(self, node, ports):
        return [
            {
                "step": "multiboot_switch",
                "priority": 0,
                "interface": "deploy",
                "reboot_requested": False,
                "abortable": True,
                "argsinfo": switch.ARGSINFO,
            }
        ]

    def multiboot_switch(
        self, node, ports, target=None, mode=None, tries=None, multiboot=None, **kwargs
    ):
        """Choose the image the node boots next and return bootctl's JSON report."""
        bootctl = switch.bootctl_path(deployer_path())
        command = switch.argv(bootctl or "bootctl", target, mode, tries, multiboot, kwargs)
        if not bootctl:
            raise errors.ServicingError(
                f"no bootctl of the multiboot tools: not beside the deployer, not on PATH, "
                f"and {switch.BOOTCTL_ENV} is not an executable"
            )
        LOG.info("Running %s", " ".join(command))
        report = switch.run(command)
        LOG.info("multiboot_switch: %s boots next", target)
        return report

    def multiboot_deploy(
        self, node, ports, provision=None, provision_url=None, disks=None, **kwargs
    ):
        """Deploy the provision.json onto the node's disks and return the deployer's summary."""
        _check_args(provision, provision_url, disks, kwargs)
        binary = deployer_path()
        if not binary:
            raise errors.DeploymentError(
                f"no deployer binary: not on PATH and {DEPLOYER_ENV} is not an executable"
            )
        try:
            if provision is not None:
                config = provision
            elif provision_url is not None:
                config = cfg.fetch_json(provision_url, "provision_url")
            else:
                config = cfg.node_config(node or {})
        except cfg.ConfigError as e:
            raise errors.DeploymentError(_one_line(e)) from e
        disk_args = _disk_args(config, node, disks)
        with tempfile.TemporaryDirectory(prefix="multiboot-") as tmp:
            path = os.path.join(tmp, "provision.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(config, f)
            argv = [binary, "deploy", path, *disk_args, "--yes", "--json"]
            LOG.info("Running %s", " ".join(argv))
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.stderr:
            LOG.info("deployer's output:\n%s", result.stderr)
        try:
            summary = json.loads(result.stdout)
        except ValueError:
            summary = None
        if not isinstance(summary, dict):
            summary = None
        if result.returncode != 0 or summary is None or not summary.get("deployed"):
            raise _failure(result.returncode, summary, result.stderr)
        LOG.info("multiboot_deploy deployed %s", [i.get("name") for i in summary["images"]])
        return summary
