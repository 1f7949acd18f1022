"""The service on a secured cluster, as managed Kafka runs it: SASL_SSL with SCRAM-SHA-512
and a CA of the cluster's own (tools/kafka's SASL_SSL listener). The worker knows only
the SASL_SSL address, and that listener refuses plaintext, so nothing here can pass by
falling back. A refused password or an untrusted certificate stops the worker at start
with one line naming the setting, never its value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from norce_simulator import SimulatorConfig, SimulatorServer
from streams.kafka import producer
from streams.kafka_security import KafkaAccessRefused, check_broker_access
from streams.settings import Settings
from tests.support.broker import SecuredBroker, free_port
from tests.support.debezium import PRICE_KEY, envelope, key_bytes, price_row
from tests.support.kafka import create_topics, produce, read_all
from tests.support.stack import (
    SECRETS,
    start_worker,
    trigger_delta,
    wait_until,
    worker_env,
    write_export_config,
)
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.e2e

PART_NOS = ["SKU-S1", "SKU-S2"]
SKU_EVENTS = ("SkuChangedNotification", "SkuPriceChangedNotification")


def seed(sim: SimulatorServer) -> None:
    std = {"PriceListCode": "STD"}
    sim.state.seed(
        {
            "pricelist": [{**std, "Name": "Standard", "CurrencyCode": "SEK"}],
            "sku": [{"PartNo": p, "EanCode": f"ean-{p}"} for p in PART_NOS],
            "price": [{"PartNo": p, **std, "PriceSale": 1.0} for p in PART_NOS],
            "stock": [{"PartNo": p, "WarehouseCode": "W1", "OnhandValue": 5} for p in PART_NOS],
        }
    )


def secured_env(
    broker: SecuredBroker, unique: str, sim_url: str, config: Path, tmp_path: Path, **changes: str
) -> dict[str, str]:
    """The tests' worker environment (tests/support/stack.py) on the SASL_SSL listener."""
    env = worker_env(broker.servers, unique, sim_url, config, tmp_path)
    return {
        **env,
        "NORCE_SYNC_EXPORT_TOPIC_PREFIX": f"{env['NORCE_SYNC_APP_ID']}.",
        **broker.env(**changes),
    }


async def test_import_and_export_over_sasl_ssl(
    secured_kafka: SecuredBroker, unique: str, tmp_path: Path
) -> None:
    broker = secured_kafka
    secured = broker.settings()
    sim_cfg = SimulatorConfig(
        port=0, lead_time_s=0.2, token_rate_limit=False, webhook_time_factor=0.01
    )
    async with SimulatorServer(sim_cfg) as sim:
        sim.state.seed(
            {
                "pricelist": [{"PriceListCode": "STD", "Name": "Standard", "CurrencyCode": "SEK"}],
                "sku": [{"PartNo": p, "EanCode": f"ean-{p}"} for p in PART_NOS],
                "price": [
                    {"PartNo": p, "PriceListCode": "STD", "PriceSale": 1.0} for p in PART_NOS
                ],
                "stock": [{"PartNo": p, "WarehouseCode": "W1", "OnhandValue": 5} for p in PART_NOS],
            }
        )
        config, topic = write_export_config(tmp_path, unique)
        # The webhooks go through an intake process: its producer is secured as well.
        intake_port = free_port()
        env = secured_env(
            broker, unique, sim.url, config, tmp_path,
            NORCE_SYNC_INTAKE_PROCESSES="1", NORCE_SYNC_INTAKE_PORT=str(intake_port),
        )  # fmt: skip
        app_id = env["NORCE_SYNC_APP_ID"]
        worker = await start_worker("norce_sync", env, tmp_path / "worker.log")
        try:
            sim.state.set_subscriptions(
                {
                    t: {
                        "url": f"http://127.0.0.1:{intake_port}/norce/events/{t}",
                        "headers": {"x-norce-webhook-token": SECRETS["NORCE_SYNC_WEBHOOK_TOKEN"]},
                    }
                    for t in SKU_EVENTS
                }
            )
            # Import path: CDC changes over SASL_SSL -> delta -> Connect job succeeded.
            rows = [price_row(p, 30.0 + n) for n, p in enumerate(PART_NOS)]
            changes = [(key_bytes(r, PRICE_KEY), envelope("prices", "u", r)) for r in rows]
            await produce(broker.servers, topic, changes, settings=secured)
            async with httpx.AsyncClient(timeout=60) as http:

                async def pending() -> bool:
                    data = (await http.get(f"{worker.url}/pending/")).json()
                    return bool(data["total_keys"] == len(PART_NOS))

                await wait_until(pending, what="changes pending")
                posted = await trigger_delta(worker, "erp", "price")
                assert posted["batches"], posted

                async def succeeded() -> bool:
                    data = (await http.get(f"{worker.url}/jobs/?status=succeeded")).json()
                    return bool(data["total"] == 1)

                await wait_until(succeeded, what="import job succeeded")
            assert {r["PartNo"]: r["PriceSale"] for r in sim.state.list_items("price")} == {
                p: 30.0 + n for n, p in enumerate(PART_NOS)
            }

            # Export path: the job's changes come back as webhooks -> the intake process ->
            # Query -> target topic.
            async def exported() -> bool:
                target = f"{app_id}.out.search.sku"
                records = await read_all(broker.servers, target, settings=secured)
                return {r.key for r in records} >= {p.encode() for p in PART_NOS}

            await wait_until(exported, timeout=60, what="target records over SASL_SSL")
        finally:
            assert worker.stop() == 0, worker.tail()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert broker.password not in log


async def test_the_listener_refuses_plaintext_clients(secured_kafka: SecuredBroker) -> None:
    """The SASL_SSL address talks nothing else: a plaintext client cannot even bootstrap."""
    plain = producer(
        Settings(kafka_security_protocol="PLAINTEXT"),
        servers=secured_kafka.servers,
        request_timeout_ms=5000,
    )
    with pytest.raises(KafkaConnectionError):
        await plain.start()
    await plain.stop()
    # ... while the same producer with the secured settings gets in.
    secured = producer(secured_kafka.settings(), servers=secured_kafka.servers)
    await secured.start()
    await secured.stop()


def other_ca(tmp_path: Path) -> Path:
    """A CA that did not sign the broker's certificate."""
    pem = tmp_path / "other-ca.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=not the broker's CA", "-keyout", str(tmp_path / "other-ca.key")),
            *("-out", str(pem)),
        ],
        check=True,
        capture_output=True,
    )
    return pem


@pytest.mark.parametrize(
    ("case", "setting"),
    [
        ("wrong password", "NORCE_SYNC_KAFKA_SASL_PASSWORD"),
        ("untrusted CA", "NORCE_SYNC_KAFKA_SSL_CAFILE"),
    ],
)
def test_refused_settings_stop_the_worker_with_one_line(
    secured_kafka: SecuredBroker, unique: str, tmp_path: Path, case: str, setting: str
) -> None:
    wrong = f"wrong-{unique}"
    changes = (
        {"NORCE_SYNC_KAFKA_SASL_PASSWORD": wrong}
        if case == "wrong password"
        else {"NORCE_SYNC_KAFKA_SSL_CAFILE": str(other_ca(tmp_path))}
    )
    config, _ = write_export_config(tmp_path, unique)
    env = secured_env(secured_kafka, unique, "http://127.0.0.1:9", config, tmp_path, **changes)
    worker = WorkerProcess("norce_sync", env, tmp_path / "worker.log")
    with pytest.raises(RuntimeError, match="worker exited"):
        worker.start(ready_timeout=90)
    assert worker.proc is not None and worker.proc.returncode != 0
    log = (tmp_path / "worker.log").read_text(errors="replace")
    naming = [line for line in log.splitlines() if setting in line]
    assert len(naming) == 1, log[-3000:]
    assert "refused" in naming[0] or "not trusted" in naming[0], naming[0]
    assert wrong not in log and secured_kafka.password not in log


async def test_mtls_client_certificate(secured_kafka: SecuredBroker, unique: str) -> None:
    """The SSL listener that requires a client certificate (Aiven's, MSK's mTLS): the
    builders' clients get in with the certificate settings; without them the start check
    names the certificate settings."""
    broker = secured_kafka
    mtls = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=broker.cafile,
        kafka_ssl_certfile=broker.client_cert,
        kafka_ssl_keyfile=broker.client_key,
    )
    await check_broker_access(mtls, broker.mtls_servers)
    topic = f"mtls-{unique}"
    await create_topics(broker.mtls_servers, [topic], settings=mtls)
    await produce(broker.mtls_servers, topic, [(b"k", {"v": 1})], settings=mtls)
    [record] = await read_all(broker.mtls_servers, topic, settings=mtls)
    assert record.key == b"k"

    no_certificate = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=broker.cafile)
    with pytest.raises(KafkaAccessRefused, match="NORCE_SYNC_KAFKA_SSL_CERTFILE"):
        await check_broker_access(no_certificate, broker.mtls_servers)
