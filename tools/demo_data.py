"""Sample ERP and PIM change data for `make demo`, in Debezium's Postgres form.

Writes a snapshot (op ``r``) of products, SKUs, prices and stock, then a stream of price
and stock updates, to the example config's input topics, and prints where to look.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random

import orjson

from streams.kafka import producer as kafka_producer
from streams.settings import Settings
from tests.support.debezium import (
    PRICE_KEY,
    STOCK_KEY,
    envelope,
    item_row,
    key_bytes,
    price_row,
    product_row,
    stock_row,
)

# The example config's input topics this writes (tools/demo_check.py expects a delta job
# for each of their (source, kind) pairs).
TOPICS = ("erp.public.items", "pim.public.products", "erp.public.prices", "erp.public.stock")


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="updates per second")
    args = parser.parse_args(argv)

    # Security settings (NORCE_SYNC_KAFKA_*) as the worker reads them.
    producer = kafka_producer(
        Settings(),
        servers=args.bootstrap,
        acks="all",
        linger_ms=20,
        value_serializer=_value_serializer,
    )
    await producer.start()
    try:
        for n in range(args.skus):
            part_no, code = f"SKU-{n:05d}", f"P-{n:05d}"
            item = item_row(part_no, code, weight=round(0.1 + n % 50 / 10, 2))
            product = product_row(code, part_no, name=f"Product {n}")
            price = price_row(part_no, float(100 + n))
            stock = stock_row(part_no, qty=n % 40)
            await producer.send(
                "erp.public.items", envelope("items", "r", item), key=key_bytes(item, ["part_no"])
            )
            await producer.send(
                "pim.public.products",
                envelope("products", "r", product, server="pim"),
                key=key_bytes(product, ["product_code"]),
            )
            await producer.send(
                "erp.public.prices", envelope("prices", "r", price), key=key_bytes(price, PRICE_KEY)
            )
            await producer.send(
                "erp.public.stock", envelope("stock", "r", stock), key=key_bytes(stock, STOCK_KEY)
            )
        await producer.flush()
        print(f"snapshot: {args.skus} SKUs with products, prices and stock")
        for i in range(args.updates):
            n = random.randrange(args.skus)
            part_no = f"SKU-{n:05d}"
            if i % 2:
                row = price_row(part_no, float(100 + n + random.randint(-20, 20)))
                await producer.send(
                    "erp.public.prices", envelope("prices", "u", row), key=key_bytes(row, PRICE_KEY)
                )
            else:
                row = stock_row(part_no, qty=random.randint(0, 50))
                await producer.send(
                    "erp.public.stock", envelope("stock", "u", row), key=key_bytes(row, STOCK_KEY)
                )
            await asyncio.sleep(1 / args.rate)
        await producer.flush()
        print(f"updates: {args.updates} price and stock changes")
    finally:
        await producer.stop()


def _value_serializer(value: object) -> bytes:
    return orjson.dumps(value)


if __name__ == "__main__":
    asyncio.run(main())
