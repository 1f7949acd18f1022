"""The ops commands are on the ``norce-sync`` command line, each with its --help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.broker import ROOT

HELP = {
    ("jobs",): ["--status", "--source", "--kind", "--limit", "--offset", "--json"],
    ("dlq", "list"): ["--stage", "--since", "--limit"],
    ("dlq", "replay"): ["--stage", "--since", "--offset", "--dry-run", "ORIGINAL topic"],
    ("reconcile",): ["--source", "--kind", "--repair", "--last", "--json", "--timeout"],
    ("full-import",): ["--source", "--kind", "--wait", "--timeout", "--force"],
}


@pytest.mark.parametrize("command", list(HELP), ids=" ".join)
def test_command_help(command: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "norce_sync", *command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"Usage: python -m norce_sync {' '.join(command)} [OPTIONS]" in done.stdout
    for option in HELP[command]:
        assert option in done.stdout


def test_simulator_command_lists_its_options() -> None:
    # The simulator is its own command (``norce-simulator``): the worker's CLI never
    # imports it (import-linter's contract "Shipped code does not import the simulator").
    done = subprocess.run(
        [sys.executable, "-m", "norce_simulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: norce-simulator" in done.stdout
    for option in ["--host", "--port", "--lead-time", "--webhook-time-factor", "--no-history"]:
        assert option in done.stdout


def test_worker_modules_do_not_load_the_simulator() -> None:
    # What a worker imports (the composition root, every flow) must not pull in the
    # simulator: it is loaded only by the ``simulator`` command and the tests.
    code = (
        "import importlib, pkgutil, sys\n"
        "import agents, norce_sync.worker\n"
        "norce_sync.worker.build()\n"
        "for m in pkgutil.walk_packages(agents.__path__, 'agents.'):\n"
        "    importlib.import_module(m.name)\n"
        "loaded = sorted(n for n in sys.modules if n.startswith('norce_simulator'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


def test_worker_with_a_broken_config_exits_instead_of_running_half_loaded(
    tmp_path: Path,
) -> None:
    # A worker without its hooks would run without the flows that need them (no views,
    # no agents); the worker must stop and say why.
    (tmp_path / "sync.yaml").write_text(
        (ROOT / "config" / "example.yaml").read_text()  # its hook file is not beside it
    )
    env = {
        **os.environ,
        "NORCE_SYNC_CONFIG_FILE": str(tmp_path / "sync.yaml"),
        "NORCE_SYNC_BROKER": "kafka://127.0.0.1:1",
        "NORCE_SYNC_NORCE_BASE_URL": "http://127.0.0.1:9",
        "NORCE_SYNC_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "norce_sync", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "example_hooks.py" in done.stderr + done.stdout
