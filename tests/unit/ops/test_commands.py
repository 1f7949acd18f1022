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
    ("simulator",): ["--host", "--port", "--lead-time", "--webhook-time-factor"],
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


def test_simulator_options_become_simulator_arguments() -> None:
    from agents.commands import simulator_argv

    argv = simulator_argv(
        {
            "host": "0.0.0.0",
            "port": 9,
            "no_history": True,
            "no_token_rate_limit": False,
            "query_rate_limit": None,
            "lead_time": 0.5,
        }
    )
    assert argv == ["--host", "0.0.0.0", "--port", "9", "--no-history", "--lead-time", "0.5"]
    from norce.simulator.cli import parse_args

    config = parse_args(argv)
    assert (config.host, config.port, config.record_history, config.lead_time_s) == (
        "0.0.0.0",
        9,
        False,
        0.5,
    )
