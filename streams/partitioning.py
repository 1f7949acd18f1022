"""Kafka's default key partitioning (murmur2 of the key, modulo the partition count),
computed with less Python work than aiokafka's.

Every produced record with a key and no partition is hashed: a webhook once at intake,
its export records once per target. aiokafka's ``murmur2`` masks after every operation
and indexes the key byte by byte, and its producer builds two sets and two lists of the
topic's partitions for every record before calling the partitioner: together about 5% of
the worker's CPU under webhook load (bench/RESULTS.md, session 8). Here the 4-byte words
come from one ``struct`` unpack, and a key's partition is computed from the partition
count alone. Results are identical to aiokafka's (and the Java client's) for every key
(unit tests compare them): the same key still lands on the same partition.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from aiokafka.partitioner import DefaultPartitioner

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_unpackers: dict[int, Callable[[bytes], tuple[int, ...]]] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (unsigned 32 bits), as aiokafka's ``murmur2``."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    if words:
        unpack = _unpackers.get(words)
        if unpack is None:
            unpack = _unpackers[words] = struct.Struct(f"<{words}I").unpack_from
        for k in unpack(data):
            k = (k * _M) & _MASK
            k = ((k ^ (k >> 24)) * _M) & _MASK
            h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        i = words << 2
        if rest == 3:
            h ^= data[i + 2] << 16
        if rest >= 2:
            h ^= data[i + 1] << 8
        h = ((h ^ data[i]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` among ``partitions``
    (numbered 0..n-1, as a topic's are)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def is_default(partitioner: object) -> bool:
    """Whether a producer uses aiokafka's default partitioner (the only one this module
    may stand in for)."""
    return partitioner is DefaultPartitioner or isinstance(partitioner, DefaultPartitioner)
