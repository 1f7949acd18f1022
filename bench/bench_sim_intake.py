"""The simulator's Connect intake per price row, in process (no HTTP): the body parsed by
ijson alone (``iter_json_array``, the reference) and by the connect handler's reader
(``iter_json_batches``), each alone and with the handler's per-row work (``prepare`` and
the spool line). CPU microseconds per row, the best and the median of ``--rounds``
alternating rounds (CPU time: less swayed by other load than wall time).

    .venv/bin/python bench/bench_sim_intake.py --rows 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from norce_simulator.header import parse_header  # noqa: E402
from norce_simulator.jsonarray import iter_json_array, iter_json_batches  # noqa: E402
from norce_simulator.kinds import prepare  # noqa: E402

READ = 64 * 1024  # what aiohttp hands the handler per read, about


def body_of(rows: int) -> bytes:
    return orjson.dumps(
        [
            {
                "PartNo": f"SKU-{n:07d}",
                "PriceListCode": "STD",
                "QuantityBreak": 1,
                "PriceSale": 100 + n % 1000,
                "CostPurchase": 60.0,
                "CostUnit": 62.0,
                "PriceRecommended": 120.0,
                "IsPriceDiscountable": True,
                "CurrencyCode": "SEK",
                "IsActive": True,
            }
            for n in range(rows)
        ]
    )


class Stream:
    def __init__(self, body: bytes) -> None:
        self.body, self.at = body, 0

    async def read(self, n: int = -1) -> bytes:
        n = READ if n < 0 else min(n, READ)
        chunk = self.body[self.at : self.at + n]
        self.at += len(chunk)
        return chunk


def cases(body: bytes) -> dict[str, Callable[[], Coroutine[Any, Any, int]]]:
    header = parse_header('{"AccountId": 1, "SkuPriceListFieldsThatAreSet": ["PriceSale"]}')
    line = orjson.OPT_APPEND_NEWLINE

    async def ijson_parse() -> int:
        return sum([1 async for _ in iter_json_array(Stream(body))])

    async def batches_parse() -> int:
        return sum([len(b) async for b in iter_json_batches(Stream(body))])

    async def ijson_intake() -> int:
        n = 0
        async for raw in iter_json_array(Stream(body)):
            orjson.dumps(prepare("price", raw, n, header), option=line)
            n += 1
        return n

    async def batches_intake() -> int:
        n = 0
        async for batch in iter_json_batches(Stream(body)):
            lines = []
            for raw in batch:
                lines.append(orjson.dumps(prepare("price", raw, n, header), option=line))
                n += 1
            b"".join(lines)
        return n

    return {
        "parse_ijson_us": ijson_parse,
        "parse_batches_us": batches_parse,
        "intake_ijson_us": ijson_intake,
        "intake_batches_us": batches_intake,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    body = body_of(args.rows)
    runs: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, case in cases(body).items():
            started = time.process_time()
            rows = asyncio.run(case())
            assert rows == args.rows
            runs.setdefault(name, []).append((time.process_time() - started) / rows * 1e6)
    print(
        json.dumps(
            {
                name: {"best": round(min(v), 2), "median": round(sorted(v)[len(v) // 2], 2)}
                for name, v in runs.items()
            }
        )
    )


if __name__ == "__main__":
    main()
