"""Importing shipped code builds nothing: every service, client and registration is made
by the composition root (``norce_sync.worker.build``), so a module can be imported, read
and tested without a Faust app, a broker or Norce."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ("norce", "streams", "agents", "norce_sync")

# Run in a fresh interpreter: the test process has imported modules already. Every
# constructor that would mean "built at import" records its class; then every shipped
# module is imported.
PROBE = r"""
import importlib, pkgutil, sys
import aiokafka, aiokafka.admin, aiokafka.client, faust, httpx, mode

built = []

def spy(cls):
    original = cls.__init__
    def __init__(self, *args, **kwargs):
        built.append(f"{type(self).__module__}.{type(self).__qualname__}")
        original(self, *args, **kwargs)
    cls.__init__ = __init__

for cls in (
    aiokafka.AIOKafkaConsumer,
    aiokafka.AIOKafkaProducer,
    aiokafka.client.AIOKafkaClient,
    aiokafka.admin.AIOKafkaAdminClient,
    httpx.AsyncClient,
    httpx.Client,
    mode.Service,  # every Faust app, agent, table, topic conductor and our services
    faust.App,
):
    spy(cls)

from norce.client import NorceClient
spy(NorceClient)

modules = []
for package in sys.argv[1:]:
    root = importlib.import_module(package)
    modules.append(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        importlib.import_module(info.name)
        modules.append(info.name)
print(len(modules))
print("\n".join(sorted(set(built))))
"""


def test_importing_every_shipped_module_constructs_no_client_or_service() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *SHIPPED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    count, *built = done.stdout.strip().splitlines()
    assert int(count) > 100, "the probe did not walk the packages"
    assert built == [], f"constructed at import: {built}"


def test_the_probe_sees_a_construction_at_import(tmp_path: Path) -> None:
    # The probe itself can fail: a module that builds a client at import is reported.
    package = tmp_path / "builds_at_import"
    package.mkdir()
    (package / "__init__.py").write_text("import httpx\nCLIENT = httpx.AsyncClient()\n")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "builds_at_import"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "httpx.AsyncClient" in done.stdout
