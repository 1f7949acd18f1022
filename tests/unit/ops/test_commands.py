"""The ops commands are on the ``norce-sync`` command line, each with its --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.broker import ROOT

HELP = {
    ("jobs",): ["--status", "--source", "--kind", "--limit", "--offset", "--json"],
    ("dlq", "list"): ["--stage", "--since", "--limit"],
    ("dlq", "replay"): ["--stage", "--since", "--offset", "--dry-run", "ORIGINAL topic"],
}


@pytest.mark.parametrize("command", list(HELP), ids=" ".join)
def test_command_help(command: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streams", *command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"Usage: python -m streams {' '.join(command)} [OPTIONS]" in done.stdout
    for option in HELP[command]:
        assert option in done.stdout


def test_simulator_command_passes_its_options_to_the_simulator() -> None:
    # One definition of each option: the simulator's own parser answers --help.
    done = subprocess.run(
        [sys.executable, "-m", "streams", "simulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: norce-sync simulator" in done.stdout
    for option in ["--host", "--port", "--lead-time", "--webhook-time-factor", "--no-history"]:
        assert option in done.stdout


def test_worker_modules_do_not_load_the_simulator() -> None:
    # What a worker imports (the app and every agent module autodiscovery scans) must not
    # pull in the simulator: it is loaded only by the ``simulator`` command and the tests.
    code = (
        "import importlib, pkgutil, sys\n"
        "import agents, streams.main\n"
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
