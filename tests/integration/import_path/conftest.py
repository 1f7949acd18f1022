from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from norce_simulator import SimulatorConfig, SimulatorServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "import_path" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def sim() -> AsyncIterator[SimulatorServer]:
    config = SimulatorConfig(port=0, workers=2, lead_time_s=0.2, token_rate_limit=False)
    async with SimulatorServer(config) as server:
        # The tenant's existing catalogue: Norce ignores prices and stock of SKUs it does
        # not have, and the service holds them back, so the delta tests' SKUs exist.
        # (test_references.py uses NEW-* part numbers, which do not.)
        server.state.seed({"sku": CATALOGUE})
        yield server


CATALOGUE = [{"PartNo": f"SKU-{n:05d}"} for n in range(1000)] + [
    {"PartNo": f"SKU-{n}"} for n in range(10)
]
