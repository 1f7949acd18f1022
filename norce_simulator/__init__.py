"""A stand-in for Norce Commerce (Identity, Connect, Query, Event) for the demo and tests.

``SimulatorServer(SimulatorConfig(...))`` runs it in-process; ``main(argv)`` / ``run(cfg)``
serve it forever (``python -m norce_simulator --port 8300``).
"""

from __future__ import annotations

from norce_simulator.app import SimulatorServer, build_app
from norce_simulator.cli import main, run
from norce_simulator.config import NORCE_RETRY_SCHEDULE, SimulatorConfig
from norce_simulator.faults import FaultConfig, GroupFault
from norce_simulator.jobs import JobStatus
from norce_simulator.state import SimState

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
