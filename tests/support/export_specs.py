"""The example config's export targets, for the unit tests of ``agents.export.targets``."""

from __future__ import annotations

from agents.config.sync_config import load_config
from agents.export.targets import target_specs
from tests.support.sync_config import EXAMPLE

# Target specs per entity kind, the target topics prefixed with ``t1.``.
SPECS = target_specs(load_config(EXAMPLE), "t1.")
