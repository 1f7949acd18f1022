"""Avro decode + map CPU cost per change event, no broker: the Avro hot path on its own.

    .venv/bin/python bench/bench_avro_decode.py --events 100000

The same Debezium price changes (``tests/support/avro.py``: Connect ``Decimal`` columns,
nullable unions) as JSON envelopes and as Avro in the Confluent wire format, run through
the example config's ``erp.public.prices`` binding (the Avro one with a
``schema_registry``, its schemas put in the cache as a fetch would) in interleaved
rounds, measuring process CPU time (best round):

- ``json_fused``: the JSON binding's ``decoder(value, key)``;
- ``avro_fused``: the Avro binding's ``decoder(value, key)`` (wire header, cache look-up,
  fastavro ``schemaless_reader``, decimal conversion, then the same checks and mapping);
- ``avro_only``: fastavro's ``schemaless_reader`` of each body, the floor.

Prints one JSON line (CPU microseconds per event).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_reader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.config.mapping import decimal_to_number  # noqa: E402
from agents.config.sync_config import load_config  # noqa: E402
from agents.imports.cdc import decoder_for  # noqa: E402
from agents.imports.registry import registry_for  # noqa: E402
from bench.bench_mapping import timed  # noqa: E402
from tests.support.avro import (  # noqa: E402
    envelope_datum,
    key_datum,
    price_datum,
    price_schemas,
    wire,
)
from tests.support.sync_config import with_changes  # noqa: E402

KEY_ID, VALUE_ID = 1, 2


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: decimal_to_number(v) if hasattr(v, "as_tuple") else v for k, v in row.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    binding = load_config(ROOT / "config" / "example.yaml").binding_for_topic("erp.public.prices")
    avro_binding = with_changes(binding, schema_registry={"url": "http://registry.invalid"})
    assert avro_binding.schema_registry is not None
    key_schema, value_schema = price_schemas("erp.public.prices")
    cache = registry_for(avro_binding.schema_registry)
    cache.add(KEY_ID, orjson.dumps(key_schema).decode())
    cache.add(VALUE_ID, orjson.dumps(value_schema).decode())

    # Parsed once: ``wire`` re-parses a parsed schema at almost no cost.
    key_parsed, parsed = parse_schema(key_schema), parse_schema(value_schema)
    json_msgs, avro_msgs = [], []
    for i in range(args.events):
        row = price_datum(f"SKU-{i % args.keys:06d}", f"{i % 100_000}.{i % 100:02d}")
        datum = envelope_datum("u", row, lsn=10_000 + i, ts_ms=1_714_000_000_000 + i)
        key, value = wire(KEY_ID, key_parsed, key_datum(row)), wire(VALUE_ID, parsed, datum)
        avro_msgs.append((key, value))
        as_json = {**datum, "after": _jsonable(row)}
        json_msgs.append((orjson.dumps(key_datum(row)), orjson.dumps(as_json)))

    json_decoder, avro_decoder = decoder_for(binding), decoder_for(avro_binding)
    for (jk, jv), (ak, av) in zip(json_msgs[:100], avro_msgs[:100], strict=True):
        a, b = json_decoder(jv, jk), avro_decoder(av, ak)  # equal work, equal results
        assert a is not None and b is not None and a.state_key == b.state_key
        assert orjson.dumps(a.row) == orjson.dumps(b.row), (a.row, b.row)

    def json_fused() -> None:
        for key, value in json_msgs:
            json_decoder(value, key)

    def avro_fused() -> None:
        for key, value in avro_msgs:
            avro_decoder(value, key)

    def avro_only() -> None:
        for _key, value in avro_msgs:
            stream = io.BytesIO(value)
            stream.seek(5)
            schemaless_reader(stream, parsed, None)

    paths = {"json_fused": json_fused, "avro_fused": avro_fused, "avro_only": avro_only}
    best = {name: float("inf") for name in paths}
    for _ in range(args.rounds):
        for name, run in paths.items():
            best[name] = min(best[name], timed(run))
    result: dict[str, Any] = {"events": args.events, "keys": args.keys, "rounds": args.rounds}
    result |= {f"{name}_us": round(s / args.events * 1e6, 2) for name, s in best.items()}
    result["avro_fused_events_per_s"] = round(args.events / best["avro_fused"])
    result["avro_bytes_per_event"] = round(sum(len(v) for _, v in avro_msgs) / args.events)
    result["json_bytes_per_event"] = round(sum(len(v) for _, v in json_msgs) / args.events)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
