"""How the tests get a real schema registry (Confluent-compatible API).

1. ``SCHEMA_REGISTRY_URL`` when set (the ccompat base URL of a running registry);
2. otherwise Apicurio Registry from ``tools/registry`` (built from Maven Central), started
   on a free port and stopped at the end, also if pytest is killed.

No fallback to skipping: when neither works the test fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.broker import ROOT, free_port, script_up

REGISTRY_SH = ROOT / "tools" / "registry" / "registry.sh"


class RegistryUnavailable(RuntimeError):
    pass


@contextmanager
def schema_registry() -> Iterator[str]:
    """Yield the Confluent-compatible base URL of a running registry."""
    configured = os.environ.get("SCHEMA_REGISTRY_URL")
    if configured:
        yield configured.rstrip("/")
        return
    port = free_port()
    env = {**os.environ, "REGISTRY_PORT": str(port)}
    script_up(REGISTRY_SH, env, RegistryUnavailable("schema registry failed to start"))
    try:
        yield f"http://127.0.0.1:{port}/apis/ccompat/v7"
    finally:
        subprocess.run([str(REGISTRY_SH), "down"], env=env, capture_output=True)
