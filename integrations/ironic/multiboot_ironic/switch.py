"""The service step multiboot_switch: bootctl on the node's multiboot partition."""

import json
import os
import re
import shutil
import subprocess

from ironic_python_agent import errors

# The bootctl binary when it is not beside the deployer or on PATH.
BOOTCTL_ENV = "MULTIBOOT_BOOTCTL"

MODES = ("default", "once", "try")
UUID = re.compile(r"^[0-9a-fA-F-]{1,36}$")

ARGSINFO = {
    "target": {
        "description": (
            'The entry to boot: an image name, a GRUB index ("2", "1>0"), a menu entry '
            "id or a title, as `bootctl switch` takes it."
        ),
        "required": True,
    },
    "mode": {
        "description": (
            '"default" (boot it from the next boot on), "once" (the next boot only) or '
            '"try" (the next `tries` boots, then back to the default unless the image runs '
            '`bootctl mark-good`). Default: "default".'
        ),
        "required": False,
    },
    "tries": {
        "description": 'With mode "try": how many boots the trial lasts (default 1).',
        "required": False,
    },
    "multiboot": {
        "description": (
            "The filesystem UUID of the multiboot partition (the deploy's "
            "multiboot_partition). Default: the filesystem labelled multiboot."
        ),
        "required": False,
    },
}


def _one_line(text):
    return " ".join(str(text).split())


def _is_ours(path):
    # systemd's bootctl (systemd-boot) has the same name and prints "systemd NNN".
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
    except OSError:
        return False
    return out.startswith("bootctl ")


def bootctl_path(deployer):
    """Our bootctl: $MULTIBOOT_BOOTCTL, else the one beside the deployer, else on PATH."""
    override = os.environ.get(BOOTCTL_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    candidates = []
    if deployer:
        candidates.append(os.path.join(os.path.dirname(deployer), "bootctl"))
    found = shutil.which("bootctl")
    if found:
        candidates.append(found)
    for path in candidates:
        if os.access(path, os.X_OK) and _is_ours(path):
            return path
    return None


def argv(bootctl, target, mode, tries, multiboot, extra):
    """bootctl's command line for the step's arguments; InvalidCommandParamsError if bad."""
    problems = []
    if extra:
        problems.append(f"unknown argument(s) {sorted(extra)}; known: {sorted(ARGSINFO)}")
    if not isinstance(target, str) or not target.strip():
        problems.append(f"target must be a non-empty string, got {target!r}")
    mode = "default" if mode is None else mode
    if mode not in MODES:
        problems.append(f"mode must be one of {list(MODES)}, got {mode!r}")
    if tries is not None:
        if mode != "try":
            problems.append(f'tries is for mode "try", not {mode!r}')
        elif isinstance(tries, bool) or not isinstance(tries, int) or tries < 1:
            problems.append(f"tries must be a whole number of at least 1, got {tries!r}")
    if multiboot is not None and (not isinstance(multiboot, str) or not UUID.match(multiboot)):
        problems.append(f"multiboot must be a filesystem UUID, got {multiboot!r}")
    if problems:
        raise errors.InvalidCommandParamsError("multiboot_switch: " + "; ".join(problems))
    command = [bootctl]
    if multiboot:
        command += ["--multiboot", multiboot]
    command += ["switch", "--json"]
    if mode == "once":
        command.append("--once")
    elif mode == "try":
        command.append(f"--try={tries or 1}")
    return command + ["--", target]


def run(command):
    """Runs bootctl switch; its JSON report, or ServicingError with its one-line error."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        tail = lines[-1] if lines else "no output"
        raise errors.ServicingError(
            _one_line(f"bootctl switch exited with status {result.returncode}: {tail}")
        )
    try:
        return json.loads(result.stdout)
    except ValueError as e:
        raise errors.ServicingError(_one_line(f"bootctl switch printed no JSON: {e}")) from e
