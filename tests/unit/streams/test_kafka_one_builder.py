"""Every Kafka client the project ships is built in ``streams/kafka.py``, so each one gets
the security settings (TLS, SASL): a client built anywhere else would talk plaintext to a
secured cluster. Walks the source (AST) of every shipped module, tools and benchmarks."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.broker import ROOT

CLIENTS = frozenset(
    {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}
)
BUILDER = Path("streams/kafka.py")
# What pyproject ships (packages.find) plus the tools and benchmarks users run.
SHIPPED = ("streams", "agents", "norce", "norce_simulator", "tools", "bench")


def client_constructions(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of each call to an aiokafka client class, by name or attribute
    (``AIOKafkaProducer(...)``, ``aiokafka.AIOKafkaProducer(...)``, an alias too)."""
    aliases = dict.fromkeys(CLIENTS, "")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiokafka"):
            for alias in node.names:
                if alias.name in CLIENTS and alias.asname:
                    aliases[alias.asname] = alias.name
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in aliases:
            found.append((node.lineno, aliases[name] or name))
    return found


def shipped_modules() -> list[Path]:
    return sorted(p for top in SHIPPED for p in (ROOT / top).rglob("*.py"))


def test_every_shipped_kafka_client_comes_from_the_builder() -> None:
    modules = shipped_modules()
    assert len(modules) > 50 and ROOT / BUILDER in modules  # the walk sees the code
    outside = [
        f"{path.relative_to(ROOT)}:{line} builds {name}"
        for path in modules
        if path.relative_to(ROOT) != BUILDER
        for line, name in client_constructions(ast.parse(path.read_text(), str(path)))
    ]
    assert not outside, "use the builders in streams/kafka.py:\n" + "\n".join(outside)


def test_the_walk_finds_constructions_in_every_spelling() -> None:
    source = (
        "import aiokafka\n"
        "from aiokafka import AIOKafkaProducer as P\n"
        "from aiokafka.admin import AIOKafkaAdminClient\n"
        "a = P(bootstrap_servers='x')\n"
        "b = aiokafka.AIOKafkaConsumer('t')\n"
        "c = AIOKafkaAdminClient()\n"
        "d: AIOKafkaAdminClient | None = None\n"  # an annotation is no construction
    )
    found = client_constructions(ast.parse(source))
    assert found == [(4, "AIOKafkaProducer"), (5, "AIOKafkaConsumer"), (6, "AIOKafkaAdminClient")]
