import json
import os
import stat
import sys

import pytest
import stevedore.named
from ironic_python_agent import config as ipa_config
from ironic_python_agent import hardware

# As the agent does before it loads hardware managers: IPA's modules read these options.
ipa_config.populate_config()

from multiboot_ironic import config, manager  # noqa: E402

# Stands in for the deployer: records its argv and the config it was given, prints the
# summary of $STUB_SUMMARY (or plain text) on stdout, and exits with $STUB_EXIT.
STUB = """#!{python}
import json, os, sys
record = {{"argv": sys.argv[1:]}}
record["config"] = json.load(open(sys.argv[2]))
with open(os.environ["STUB_RECORD"], "w") as f:
    json.dump(record, f)
sys.stderr.write(os.environ.get("STUB_STDERR", "deployer: stub\\n"))
summary = os.environ.get("STUB_SUMMARY")
sys.stdout.write(open(summary).read() if summary else "not json\\n")
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
"""

DEPLOYED = {
    "version": 1,
    "exit": 0,
    "deployed": True,
    "disks": [{"name": "vda", "path": "/dev/sdb"}],
    "images": [
        {
            "name": "alpha",
            "image_name": "alpha",
            "root_uuid": "285a0030-b649-4cb3-b79f-ba15df191cda",
            "grub_id": 0,
            "default": True,
        }
    ],
    "multiboot_partition": "982d2de3-c796-472a-ad6f-5c7e035d3ccb",
    "boot_info": "/tmp/boot-info.json",
    "errors": [],
    "failed_step": None,
    "timings": {
        "seconds": 0.7,
        "peak_rss_bytes": 1,
        "cpu_seconds": 0.1,
        "programs_cpu_seconds": 0.1,
        "steps": [],
    },
}


class Stub:
    def __init__(self, tmp_path, monkeypatch):
        self.path = tmp_path / "deployer"
        self.path.write_text(STUB.format(python=sys.executable))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)
        self.record_path = tmp_path / "record.json"
        self.summary_path = tmp_path / "summary.json"
        self.monkeypatch = monkeypatch
        monkeypatch.setenv(manager.DEPLOYER_ENV, str(self.path))
        monkeypatch.setenv("STUB_RECORD", str(self.record_path))
        self.answer(DEPLOYED, 0)

    def answer(self, summary, status):
        if summary is None:
            self.monkeypatch.delenv("STUB_SUMMARY", raising=False)
        else:
            self.summary_path.write_text(json.dumps(summary))
            self.monkeypatch.setenv("STUB_SUMMARY", str(self.summary_path))
        self.monkeypatch.setenv("STUB_EXIT", str(status))

    @property
    def ran(self):
        return self.record_path.exists()

    @property
    def record(self):
        return json.loads(self.record_path.read_text())


@pytest.fixture
def stub(tmp_path, monkeypatch):
    # A default config baked into this machine must not leak into the tests.
    monkeypatch.setenv(config.DEFAULT_CONFIG_ENV, os.fspath(tmp_path / "no-default.json"))
    return Stub(tmp_path, monkeypatch)


@pytest.fixture
def hwm():
    return manager.MultibootHardwareManager()


@pytest.fixture
def only_this_manager(monkeypatch):
    """IPA's dispatch sees only this package's manager, found by its entry point: IPA's
    generic one would probe this machine's hardware."""
    monkeypatch.setattr(hardware, "_global_managers", None)
    monkeypatch.setattr(
        hardware,
        "_get_extensions",
        lambda: stevedore.named.NamedExtensionManager(
            namespace="ironic_python_agent.hardware_managers",
            names=["multiboot"],
            invoke_on_load=True,
        ),
    )
    monkeypatch.setattr(hardware, "cache_node", lambda node: None)
