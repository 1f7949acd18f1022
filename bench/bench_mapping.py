"""Decode + map CPU cost per change event, no broker: the import hot path on its own.

    .venv/bin/python bench/bench_mapping.py --events 100000

Builds Debezium price envelopes (tests/support/debezium.py, as bench_ingest.py does) and
runs them through the example config's ``erp.public.prices`` binding by each path, in
interleaved rounds, measuring process CPU time (the best round counts, so other load on
the machine shows less):

- ``baseline``: ``decode`` + ``to_mapped`` as they were at ``--baseline-ref`` (the code
  before the compiled hot path), loaded from git into private modules;
- ``records``: the reference path ``decode`` + ``to_mapped`` (pydantic records; test-only,
  ``tests/support/reference_path.py``);
- ``fused``: ``decoder_for(binding)`` once, then ``decoder(value, key)`` per event;
- ``json_only``: ``orjson.loads`` of each value, the floor.

Prints one JSON line (CPU microseconds per event, and events/s of the fused path).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.config.sync_config import InputBinding, load_config  # noqa: E402
from agents.imports.cdc import decoder_for  # noqa: E402
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row  # noqa: E402
from tests.support.reference_path import decode, to_mapped  # noqa: E402

# The last commit before the compiled hot path: the "before" figures.
BASELINE_REF = "69772bd"
_OLD_MODULES = {  # loaded in this order, each seeing the old versions of the ones before
    "streams.records": "streams/records.py",
    "agents.config.mapping": "agents/config/mapping.py",
    "agents.imports.cdc": "agents/imports/cdc.py",
}

Messages = list[tuple[bytes, bytes]]


def messages(events: int, keys: int) -> Messages:
    out = []
    for i in range(events):
        row = price_row(f"SKU-{i % keys:06d}", float(i))
        value = orjson.dumps(envelope("prices", "u", row, lsn=10_000 + i))
        out.append((key_bytes(row, PRICE_KEY), value))
    return out


def load_baseline(ref: str, binding: InputBinding) -> Callable[[bytes, bytes], Any]:
    """``to_mapped(decode(v, k))`` of the code at ``ref``, with that code's own Mapper."""
    saved = {name: sys.modules[name] for name in _OLD_MODULES}
    old: dict[str, types.ModuleType] = {}
    try:
        for name, path in _OLD_MODULES.items():
            source = subprocess.run(
                ["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True, capture_output=True
            ).stdout
            spec = importlib.util.spec_from_loader(f"baseline_{name}", loader=None)
            assert spec is not None
            module = importlib.util.module_from_spec(spec)
            # Later old modules import it by its real name; pydantic resolves annotations
            # through its own name.
            sys.modules[name] = sys.modules[spec.name] = module
            exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)
            old[name] = module
    finally:
        sys.modules.update(saved)
    mapping, cdc = old["agents.config.mapping"], old["agents.imports.cdc"]
    shim = types.SimpleNamespace(
        format=binding.format,
        key_columns=binding.key_columns,
        source=binding.source,
        kind=binding.kind,
        norce_key_fields=binding.norce_key_fields,
        mapper=mapping.Mapper(
            {name: spec.model_dump(by_alias=True) for name, spec in binding.mapping.items()},
            hook=binding.hook,
        ),
    )
    old_decode, old_to_mapped = cdc.decode, mapping.to_mapped
    return lambda value, key: old_to_mapped(old_decode(value, key, shim), shim)


def timed(run: Callable[[], None]) -> float:
    # CPU time of this process: on a shared machine, wall time would count the time other
    # processes hold the cores.
    started = time.process_time()
    run()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--baseline-ref", default=BASELINE_REF, help="git ref of the old code; 'none' skips it"
    )
    args = parser.parse_args()

    binding = load_config(ROOT / "config" / "example.yaml").binding_for_topic("erp.public.prices")
    msgs = messages(args.events, args.keys)
    decoder = decoder_for(binding)

    def fused() -> None:
        for key, value in msgs:
            decoder(value, key)

    def records() -> None:
        for key, value in msgs:
            to_mapped(decode(value, key, binding), binding)  # type: ignore[arg-type]

    def json_only() -> None:
        for _key, value in msgs:
            orjson.loads(value)

    paths: dict[str, Callable[[], None]] = {}
    if args.baseline_ref != "none":
        old = load_baseline(args.baseline_ref, binding)
        # Same results as the new path (the bench measures equal work).
        for key, value in msgs[:100]:
            before, after = old(value, key), decoder(value, key)
            assert after is not None and before.state_key == after.state_key
            assert orjson.dumps(before.row) == orjson.dumps(after.row)

        def baseline() -> None:
            for key, value in msgs:
                old(value, key)

        paths["baseline"] = baseline
    paths |= {"records": records, "fused": fused, "json_only": json_only}

    best = {name: float("inf") for name in paths}
    for _ in range(args.rounds):
        for name, run in paths.items():
            best[name] = min(best[name], timed(run))
    per_event = {f"{name}_us": round(s / args.events * 1e6, 2) for name, s in best.items()}
    result: dict[str, Any] = {"events": args.events, "keys": args.keys, "rounds": args.rounds}
    result |= per_event
    result["fused_events_per_s"] = round(args.events / best["fused"])
    if "baseline" in best:
        result["baseline_ref"] = args.baseline_ref
        result["speedup_vs_baseline"] = round(best["baseline"] / best["fused"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
