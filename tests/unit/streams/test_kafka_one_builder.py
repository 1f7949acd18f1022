"""Every Kafka client the project ships is built in ``streams/kafka.py``, so each one gets
the security settings (TLS, SASL): a client built anywhere else would talk plaintext to a
secured cluster. And aiokafka's internals are followed there only: no other module reads
a private attribute of another object but the few listed. Walks the source (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.broker import ROOT

CLIENTS = frozenset(
    {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}
)
BUILDER = Path("streams/kafka.py")
# What pyproject ships (packages.find) plus the tools and benchmarks users run.
SHIPPED = ("norce_sync", "streams", "agents", "norce", "norce_simulator", "tools", "bench")


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


# Another object's private attribute, outside the builder: each place said why it may.
# Anything else (an aiokafka client's ``_client``, ``_coordinator``, ``_send_request``...)
# belongs in streams/kafka.py, the one module that follows aiokafka's internals.
PRIVATE_READS_ALLOWED = {
    ("agents/config/mapping.py", "other._specs"),  # the same class's __eq__
    ("agents/config/mapping.py", "other._hook"),
    ("norce/odata.py", "part._operand"),  # the same module's own node classes
    ("norce/odata.py", "sub._nested"),
    ("norce/connect_header.py", "enum._value2member_map_"),  # Enum's documented lookup
    ("agents/orders/ledger.py", "lock._waiters"),  # asyncio.Lock: is anyone waiting
    ("streams/cli.py", "app.conf._origin"),  # Faust's own prepare_app sets it so
    ("streams/own_topics.py", "app._leader_assignor._leader_topic"),  # Faust's topic name
    ("streams/own_topics.py", "app._leader_assignor"),
}


def private_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, expression) of each ``x._name`` where ``x`` is not ``self`` or ``cls``."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_private_aiokafka_attributes_are_read_only_in_the_builder() -> None:
    product = [p for p in shipped_modules() if p.parts[len(ROOT.parts)] in PRODUCT]
    assert len(product) > 50
    outside = [
        f"{rel}:{line} reads {expr}"
        for path in product
        if (rel := path.relative_to(ROOT)) != BUILDER
        for line, expr in private_reads(ast.parse(path.read_text(), str(path)))
        if (str(rel), expr) not in PRIVATE_READS_ALLOWED
    ]
    assert not outside, "move it into streams/kafka.py:\n" + "\n".join(outside)


def test_the_private_read_walk_sees_through_calls_and_skips_self() -> None:
    source = "c._client.force_metadata_update()\nself._x = 1\napp.producer._ensure_producer()\n"
    assert sorted(private_reads(ast.parse(source))) == [
        (1, "c._client"),
        (3, "app.producer._ensure_producer"),
    ]


PRODUCT = ("norce_sync", "streams", "agents", "norce")  # what a worker runs
