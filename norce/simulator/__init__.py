"""A stand-in for Norce Commerce (Identity, Connect, Query, Event) for the demo and tests.

``SimulatorServer(SimulatorConfig(...))`` runs it in-process; ``main(argv)`` / ``run(cfg)``
serve it forever (``python -m norce.simulator --port 8300``).
"""

from __future__ import annotations

from norce.simulator.app import SimulatorServer, build_app
from norce.simulator.cli import main, run
from norce.simulator.config import NORCE_RETRY_SCHEDULE, SimulatorConfig
from norce.simulator.faults import FaultConfig, GroupFault
from norce.simulator.jobs import JobStatus
from norce.simulator.state import SimState

__all__ = [
    "NORCE_RETRY_SCHEDULE",
    "FaultConfig",
    "GroupFault",
    "JobStatus",
    "SimState",
    "SimulatorConfig",
    "SimulatorServer",
    "build_app",
    "main",
    "run",
]
