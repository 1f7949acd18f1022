"""The one Kafka helper module, and the only place that builds Kafka clients
(:func:`consumer`, :func:`group_consumer`, :func:`producer`, :func:`admin_client`,
:func:`metadata_client`; each gets the security settings of :mod:`streams.kafka_security`).
Also: creating the topics the worker owns and confirming them in the broker's metadata
(:func:`declare_and_confirm`); producing with the broker's acknowledgement (dead letters
included) through the app's producer; reading one stored record by offset, or a
changelog up to a snapshot of its end offsets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import faust
from aiokafka import (
    AIOKafkaClient,
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.dead_letters import note_dead_letter, refused_for_good, stripped
from streams.kafka_security import client_security
from streams.partitioning import is_default, key_partition
from streams.records import DeadLetter
from streams.settings import Settings

log = logging.getLogger(__name__)


async def send_acked(
    app: faust.App,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] = (),
    *,
    partition: int | None = None,
) -> Any:
    """Produce one record (acks=all, the app's producer setting) and wait for the ack."""
    producer = await app.maybe_start_producer()
    future = await producer.send(topic, key, value, partition, None, list(headers))
    # shield: a caller's timeout must not cancel the producer's own delivery future
    return await asyncio.shield(future)


async def send_dead_letter(
    app: faust.App, letter: DeadLetter, *, until_acked: bool = False
) -> None:
    """Log, count and produce a dead letter; returns once the broker has it.

    ``until_acked``: retry a failed produce until it succeeds or the app stops (for a
    caller that cannot go on without it, like enrichment holding its events unacked)."""
    note_dead_letter(letter)
    send = send_until_acked if until_acked else send_acked
    topic = app.settings.dlq_topic  # type: ignore[attr-defined]
    try:
        await send(app, topic, letter.kafka_key, letter.to_bytes())
    except Exception as error:
        # Too large for the topic (one created elsewhere, with a small max.message.bytes):
        # retrying cannot help; send the letter without the original bytes instead.
        summary = stripped(letter, error) if refused_for_good(error) else None
        if summary is None:
            raise
        await send(app, topic, summary.kafka_key, summary.to_bytes())


async def send_until_acked(
    app: faust.App,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] = (),
    *,
    partition: int | None = None,
) -> None:
    """``send_acked``, retried with backoff (0.2 s doubling to 10 s) until the broker has
    the record; raises only once the app stops (or on cancellation)."""
    delay = 0.2
    while True:
        try:
            await send_acked(app, topic, key, value, headers, partition=partition)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if app.should_stop:
                raise
            if refused_for_good(exc):
                raise  # the record itself is too large: retrying cannot help
            log.warning("produce to %s failed (%s); retrying in %.1fs", topic, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def bootstrap_servers(settings: Settings) -> str:
    """``kafka://a:9092;kafka://b:9092`` -> ``a:9092,b:9092``."""
    urls = [u.strip() for u in settings.broker.replace(",", ";").split(";") if u.strip()]
    return ",".join(u.split("://", 1)[-1] for u in urls)


def client_options(settings: Settings, servers: str | None = None) -> dict[str, Any]:
    """Bootstrap servers (``servers`` or the setting's) and the security settings."""
    return {
        "bootstrap_servers": servers or bootstrap_servers(settings),
        **client_security(settings),
    }


# How often a consumer's background fetch routine wakes when nothing woke it (aiokafka's
# ``consumer_timeout_ms``, default 200). Arriving records, a consumed batch, a seek, a
# resume and a lost assignment all wake it at once; the timer is a safety net. At 200 ms
# an idle worker's ~9 readers woke its loop ~45 times a second for nothing: 1000 ms cut
# four idle workers' CPU by about a fifth (bench/RESULTS.md, session 10).
FETCHER_WAKE_MS = 1000


def consumer(settings: Settings, *, servers: str | None = None, **options: Any) -> AIOKafkaConsumer:
    """A reader outside any group (changelogs, stored records); ``options`` override."""
    defaults: dict[str, Any] = {
        "consumer_timeout_ms": FETCHER_WAKE_MS,
        "enable_auto_commit": False,
        # Readers here assign and seek to the beginning; with the default "latest", the
        # offset reset that assign() schedules can land after the seek and skip the data.
        "auto_offset_reset": "earliest",
        # Large enough for a 10,000-key batch record; small enough that a full import's
        # fetch buffers stay a few MiB.
        "max_partition_fetch_bytes": 16 * 1024 * 1024,
        "fetch_max_bytes": 16 * 1024 * 1024,
    }
    return AIOKafkaConsumer(**client_options(settings, servers), **{**defaults, **options})


def group_consumer(
    settings: Settings, *topics: str, servers: str | None = None, **options: Any
) -> AIOKafkaConsumer:
    """A consumer with aiokafka's defaults but for ``options`` (and the fetch routine's
    wake-up, ``FETCHER_WAKE_MS``): group members, and readers that size their own
    fetches."""
    options = {"consumer_timeout_ms": FETCHER_WAKE_MS, **options}
    return AIOKafkaConsumer(*topics, **client_options(settings, servers), **options)


class TopicTrackingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """An aiokafka producer that never loses track of a topic it writes to.

    aiokafka's client tracks the topics its metadata refreshes ask for, but a send to a
    topic it already knows (from the all-topics answer it gets while it tracks none)
    does not track it. The first send to a new topic then narrows every later refresh to
    the tracked topics, the untracked one drops out of the metadata, and a batch still
    waiting for it has no leader until the request timeout (20 minutes under Faust):
    ``flush()`` hangs and the worker cannot stop. Seen under load in CI. Tracking every
    topic before its send closes the gap; the check is one set lookup."""

    def _track(self, topic: str) -> None:
        tracked = self.client._topics  # private: add_topic() would refresh on every call
        if topic not in tracked:
            self.client.add_topic(topic)

    async def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        self._track(topic)
        return await super().send(topic, *args, **kwargs)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self._track(topic)
        return await super().send_batch(batch, topic, partition=partition)

    def _partition(
        self,
        topic: str,
        partition: int | None,
        key: Any,
        value: Any,
        key_bytes: Any,
        value_bytes: Any,
    ) -> int:
        # aiokafka builds two sets and two lists of the topic's partitions per record:
        # with the default partitioner only the count matters (streams.partitioning).
        held = self.client.cluster._partitions.get(topic)  # private: partition -> metadata
        if held:
            if partition is not None and partition in held:
                return partition
            if partition is None and key_bytes is not None and is_default(self._partitioner):
                return key_partition(key_bytes, len(held))
        return super()._partition(topic, partition, key, value, key_bytes, value_bytes)  # type: ignore[no-any-return]


class _FaustProducer(faust_aiokafka.Producer):  # type: ignore[misc]
    @property
    def _producer_type(self) -> type[AIOKafkaProducer]:
        return TopicTrackingProducer


class FaustTransport(faust_aiokafka.Transport):  # type: ignore[misc]
    """Faust's aiokafka transport with a :class:`TopicTrackingProducer` under the app's
    producer (table changelogs, agents' sends, :func:`send_acked`)."""

    Producer = _FaustProducer


# How the app's producer batches (and an intake process's, which answers webhooks the
# same way): without a linger every message is its own request, and the ingest path (one
# changes record and two changelog records per event) spends its time in socket writes.
# 5 ms costs webhook intake little.
PRODUCER_LINGER_MS = 5
PRODUCER_MAX_BATCH_BYTES = 512 * 1024


def producer(settings: Settings, *, servers: str | None = None, **options: Any) -> AIOKafkaProducer:
    """A producer (acks=all unless ``options`` say otherwise)."""
    return TopicTrackingProducer(**client_options(settings, servers), **{"acks": "all", **options})


def metadata_client(
    settings: Settings, *, servers: str | None = None, **options: Any
) -> AIOKafkaClient:
    """A bare client for metadata requests (the readiness probe)."""
    return AIOKafkaClient(**client_options(settings, servers), **options)


def owned_group_consumer(settings: Settings, group_id: str, **options: Any) -> AIOKafkaConsumer:
    """A member of ``group_id`` that commits only what its owner says (a service that
    owns the partitions it is assigned, see :class:`OwnerRebalance`); ``options``
    override."""
    defaults: dict[str, Any] = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": int(settings.broker_session_timeout_s * 1000),
        "heartbeat_interval_ms": 3000,
        "max_poll_interval_ms": 600_000,
    }
    return group_consumer(settings, group_id=group_id, **{**defaults, **options})


# How long the broker may hold a fetch of a reader that finds nothing new (aiokafka's
# ``fetch_max_wait_ms``, default 500). The broker answers as soon as a record arrives, so
# a longer hold costs no latency; it only sets how often an idle reader asks (each ask
# and answer is Python work in the worker: at 500 ms, ~2 per second per reader). But a
# ``seek`` while a fetch is held waits for that fetch: only for readers that do not seek
# once they read (topic followers, the orders ledger's tail).
FOLLOWER_FETCH_WAIT_MS = 5000


async def fetch_or_wait(
    c: AIOKafkaConsumer, what: str, *, max_records: int, timeout_ms: int = 200
) -> dict[TopicPartition, list[ConsumerRecord]]:
    """One fetch of a service's loop; a broker error is logged (naming ``what``) and
    waited out for a second, and the loop gets nothing this time (its positions stay)."""
    try:
        return await c.getmany(timeout_ms=timeout_ms, max_records=max_records)
    except KafkaError as error:
        log.warning("%s fetch failed: %s", what, error)
        await asyncio.sleep(1.0)
        return {}


def consumer_client(c: AIOKafkaConsumer) -> Any:
    """A started consumer's network client, for raw fetch requests
    (:mod:`streams.kafka_fetch`): aiokafka has no public call for a raw fetch."""
    return c._client


async def refresh_metadata(c: AIOKafkaConsumer) -> None:
    """Ask the broker for fresh metadata now (a topic created since the consumer started,
    or its partitions): aiokafka has no public call for it."""
    await c._client.force_metadata_update()


def request_rejoin(c: AIOKafkaConsumer) -> None:
    """Make a group member rejoin (a new assignment once its topics exist)."""
    c._coordinator.request_rejoin()


def app_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under a started Faust app's producer (shared with Faust)."""
    return app.producer._ensure_producer()


def app_consumer(app: faust.App) -> AIOKafkaConsumer:
    """The aiokafka consumer under a started Faust app's consumer (it runs in a thread)."""
    return app.consumer._thread._ensure_consumer()


async def partition_for(p: AIOKafkaProducer, topic: str, key: bytes | None) -> int:
    """The partition the producer's partitioner picks for ``key`` (for building batches
    per partition), once the topic's metadata is known."""
    if topic not in p.client.cluster._partitions:  # not partitions_for_topic: a new set each
        await p.client._wait_on_metadata(topic)
    return p._partition(topic, None, None, None, key, None)


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Topic -> partition count, for the topics the broker knows with every partition led.
    Asks without auto-creation: admin.describe_topics would let a broker with
    ``auto.create.topics.enable`` create a missing topic with its default partitions."""
    request = MetadataRequest(names, allow_auto_topic_creation=False)
    try:
        described = (await admin._send_request(request)).to_object()["topics"]
    except KafkaError:
        return {}
    counts = {}
    for topic in described:
        if topic.get("error_code", 0) != 0:
            continue
        partitions = topic.get("partitions") or []
        if partitions and all(p.get("leader", -1) >= 0 for p in partitions):
            counts[topic["topic"]] = len(partitions)
    return counts


async def partitions_of(c: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, asking the broker: a new consumer's metadata is empty, and
    an empty answer here would read as an empty topic."""
    partitions = c.partitions_for_topic(topic)
    if not partitions:
        await refresh_metadata(c)
        partitions = c.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


class RecordUnavailable(Exception):
    """The record asked for is not in the log (deleted by retention, past the end) or
    could not be read in time."""


async def read_record(
    settings: Settings, topic: str, partition: int, offset: int, *, timeout: float = 30.0
) -> bytes:
    """The value of the record at ``offset``; raises ``RecordUnavailable`` when the log no
    longer (or not yet) holds it, or the broker does not answer within ``timeout``.

    Checked, not assumed: a seek below the log start (delete retention) would otherwise
    land on the first record still held, a different one."""
    c = consumer(settings)
    try:
        return await asyncio.wait_for(_read_at(c, topic, partition, offset), timeout)
    except TimeoutError:
        raise RecordUnavailable(
            f"{topic}[{partition}]@{offset} not read within {timeout:.0f}s"
        ) from None
    finally:
        await c.stop()


async def _read_at(c: AIOKafkaConsumer, topic: str, partition: int, offset: int) -> bytes:
    await c.start()
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    start = (await c.beginning_offsets([tp]))[tp]
    end = (await c.end_offsets([tp]))[tp]
    if not start <= offset < end:
        raise RecordUnavailable(
            f"{topic}[{partition}]@{offset} is not in the log (it holds {start}..{end - 1})"
        )
    c.seek(tp, offset)
    record = await c.getone(tp)
    if record.offset != offset:  # compacted away, or a transaction marker
        raise RecordUnavailable(f"{topic}[{partition}]@{offset} is gone (read {record.offset})")
    return record.value or b""


async def partition_records(
    c: AIOKafkaConsumer, tp: TopicPartition, end: int
) -> AsyncIterator[ConsumerRecord]:
    """Records of one assigned partition from its beginning up to ``end`` (exclusive)."""
    c.assign([tp])
    await c.seek_to_beginning(tp)
    while await c.position(tp) < end:
        batch = await c.getmany(tp, timeout_ms=1000, max_records=5000)
        for record in batch.get(tp, []):
            if record.offset >= end:
                return
            yield record


# -- topics the worker owns: created and confirmed before it joins its group -------------


@dataclass(frozen=True)
class TopicSpec:
    """A topic this service creates when missing. ``partitions`` is what a new topic gets;
    a topic that exists already is left as it is (Debezium may own an input topic)."""

    name: str
    partitions: int
    compacted: bool = False
    config: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1

    @classmethod
    def of(cls, settings: Settings, name: str, *, compacted: bool = False) -> TopicSpec:
        """A topic of this deployment: the settings' partitions and replication."""
        return cls(
            name,
            settings.topic_partitions,
            compacted=compacted,
            replicas=settings.topic_replication_factor,
        )

    def new_topic(self) -> NewTopic:
        config = dict(self.config)
        if self.compacted and "cleanup.policy" not in config:
            config["cleanup.policy"] = "compact"
        return NewTopic(self.name, self.partitions, self.replicas, topic_configs=config)


class TopicsNotReady(RuntimeError):
    """Topics still missing (or without a leader for a partition) when patience ran out."""


def admin_client(
    settings: Settings, *, servers: str | None = None, **options: Any
) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings, servers), **options)


async def resume_where_group_left(
    settings: Settings, c: AIOKafkaConsumer, partitions: list[TopicPartition], group: str
) -> dict[TopicPartition, int]:
    """Seek each of ``partitions`` that ``c``'s group never committed to the offset
    ``group`` committed for it (a reader that took a topic over from a Faust agent of
    group ``<app id>``): an upgrade neither repeats nor skips records. Returns the seeks."""
    fresh = [tp for tp in partitions if await c.committed(tp) is None]
    if not fresh:
        return {}
    admin = admin_client(settings)
    try:
        await admin.start()
        before = await admin.list_consumer_group_offsets(group, partitions=fresh)
    except KafkaError as error:
        log.warning("offsets of group %s not read: %s", group, error)
        return {}
    finally:
        await admin.close()
    seeks = {}
    for tp in fresh:
        meta = before.get(tp)
        if meta is not None and meta.offset >= 0:
            c.seek(tp, meta.offset)
            seeks[tp] = meta.offset
    return seeks


async def declare_and_confirm(
    settings: Settings,
    specs: Iterable[TopicSpec],
    *,
    patience_s: float = 120.0,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Create the topics that are missing, then wait until the broker's metadata lists
    every one of them with a leader for each partition: a consumer group assigned before
    that ignores the topic, and its agent never gets a partition.

    A broker that has just started can refuse for a moment (KRaft: "all brokers are
    currently fenced"), or be away: retry until ``patience_s``, then raise
    :class:`TopicsNotReady` naming what is missing."""
    wanted = {spec.name: spec for spec in specs}
    if not wanted:
        return
    deadline = time.monotonic() + patience_s
    missing: dict[str, str] = dict.fromkeys(wanted, "not checked")
    attempt = 0
    while not should_stop():
        attempt += 1
        try:
            missing = await _create_and_check(settings, wanted)
        except Exception as error:  # broker away or starting: keep trying
            missing = {name: f"{type(error).__name__}: {error}" for name in wanted}
        if not missing:
            if attempt > 1:
                log.info("topics ready after %d attempts: %d topics", attempt, len(wanted))
            return
        if time.monotonic() > deadline:
            raise TopicsNotReady(
                f"topics not ready after {patience_s:.0f}s: "
                + "; ".join(f"{name} ({why})" for name, why in sorted(missing.items()))
            )
        if attempt == 1 or attempt % 10 == 0:
            log.warning(
                "waiting for %d of %d topics to be ready: %s",
                len(missing),
                len(wanted),
                ", ".join(f"{n} ({w})" for n, w in sorted(missing.items())[:5]),
            )
        await asyncio.sleep(min(0.2 * attempt, 1.0))


async def _create_and_check(settings: Settings, wanted: Mapping[str, TopicSpec]) -> dict[str, str]:
    """One round: create the missing topics, then describe all. Returns name -> why not
    ready, empty when every topic is there with a leader for each partition."""
    admin = admin_client(settings)
    await admin.start()
    try:
        listed = set(await admin.list_topics())
        to_create = [spec.new_topic() for name, spec in wanted.items() if name not in listed]
        if to_create:
            response = await admin.create_topics(to_create)
            for topic_error in response.to_object()["topic_errors"]:
                code = topic_error["error_code"]
                if code not in (0, TopicAlreadyExistsError.errno):
                    log.warning(
                        "creating topic %s failed: error %s %s",
                        topic_error["topic"],
                        code,
                        topic_error.get("error_message") or "",
                    )
                else:
                    log.info("created topic %s", topic_error["topic"])
        return not_ready(await admin.describe_topics(list(wanted)), wanted)
    finally:
        await admin.close()


def not_ready(described: Iterable[Mapping[str, Any]], wanted: Iterable[str]) -> dict[str, str]:
    """name -> why not ready, from a metadata response's topics (``describe_topics``)."""
    why = dict.fromkeys(wanted, "not in metadata")
    for topic in described:
        name = topic["topic"]
        if name not in why:
            continue
        partitions = topic.get("partitions") or []
        if topic["error_code"]:
            why[name] = f"metadata error {topic['error_code']}"
        elif not partitions:
            why[name] = "no partitions yet"
        elif leaderless := [
            p["partition"] for p in partitions if p["leader"] < 0 or p["error_code"]
        ]:
            why[name] = f"partitions without a leader: {sorted(leaderless)}"
        else:
            del why[name]
    return why


class PartitionOwner(Protocol):
    """A service that owns the partitions its consumer is assigned (the projection, the
    export reader): it checkpoints what it holds before giving a partition up."""

    async def release(self, revoked: list[TopicPartition]) -> None: ...

    async def take(self, assigned: list[TopicPartition]) -> None: ...


class OwnerRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands a consumer's rebalance to its owner; aiokafka awaits both calls, so a
    revocation waits until the owner has checkpointed."""

    def __init__(self, owner: PartitionOwner) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.owner.release(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.owner.take(list(assigned))


class Send(NamedTuple):
    """One record for :func:`send_all_acked`."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    partition: int | None = None


async def send_all_acked(app: faust.App, sends: Sequence[Send]) -> None:
    """Produce every record through the app's producer and wait until the broker
    acknowledged each; failed ones are sent again (backing off) until they are, as
    ``send_until_acked`` does for one; raises only once the app stops.

    One batch builder (and one delivery future) per topic partition instead of one
    ``send`` per record: per record, a future, its callbacks and the producer's own
    bookkeeping were a tenth of the worker's CPU in a burst. A record without a partition
    goes where ``send`` would put it (aiokafka's partitioner on the key).

    Each batch is closed before it is handed over: complete, so no other ``send`` joins
    it, and aiokafka sends a closed batch without waiting out the producer's linger
    (``MessageBatch.remaining_linger``): up to 5 ms less per export flush."""
    todo = list(sends)
    delay = 0.2
    while todo:
        failed: list[Send] = []
        error: BaseException | None = None
        futures: list[asyncio.Future[Any]] = []
        batches: list[list[Send]] = []
        try:
            await app.maybe_start_producer()
            producer = app_producer(app)  # aiokafka's, shared with Faust
            by_tp: dict[tuple[str, int], list[Send]] = {}
            for r in todo:
                partition = r.partition
                if partition is None:
                    partition = await partition_for(producer, r.topic, r.key)
                by_tp.setdefault((r.topic, partition), []).append(r)
            for (topic, partition), records in by_tp.items():
                builder, members = producer.create_batch(), []
                for r in records:
                    headers = list(r.headers)
                    if builder.append(key=r.key, value=r.value, timestamp=None, headers=headers):
                        members.append(r)
                        continue
                    builder.close()
                    futures.append(await producer.send_batch(builder, topic, partition=partition))
                    batches.append(members)
                    builder, members = producer.create_batch(), [r]
                    if builder.append(key=r.key, value=r.value, timestamp=None, headers=headers):
                        continue
                    raise ValueError(f"record for {topic} larger than a batch")
                builder.close()
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                batches.append(members)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not all enqueued: the records of no future go again
            sent = {id(r) for members in batches for r in members}
            failed, error = [r for r in todo if id(r) not in sent], exc
        # shield: being cancelled must not cancel the producer's own delivery futures
        results = await asyncio.shield(asyncio.gather(*futures, return_exceptions=True))
        for members, result in zip(batches, results, strict=True):
            if isinstance(result, BaseException):
                failed.extend(members)
                error = result
        if not failed:
            return
        if app.should_stop:
            raise RuntimeError(f"stopping with {len(failed)} records not acknowledged")
        log.warning(
            "produce of %d records failed (%s); retrying in %.1fs", len(failed), error, delay
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
        todo = failed
