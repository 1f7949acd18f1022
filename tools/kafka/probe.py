"""Ask a Kafka broker for metadata using only the standard library.

Used by kafka.sh to decide that a freshly started broker is ready: it must answer a
Metadata request (v4, which Kafka 2.x to 4.x all accept) listing at least one broker.
Exit status 0 when it does, 1 otherwise.
"""

from __future__ import annotations

import socket
import struct
import sys


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> int:
    client_id = b"norce-sync-probe"
    # Request header v1: api_key=3 (Metadata), api_version=4, correlation_id, client_id.
    header = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id
    # Body v4: topics=null (-1: all topics), allow_auto_topic_creation=false.
    body = struct.pack(">i?", -1, False)
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read(sock, 4))[0]
        payload = _read(sock, size)
    correlation_id, _throttle, broker_count = struct.unpack(">iii", payload[:12])
    if correlation_id != 7:
        raise RuntimeError("unexpected correlation id")
    return broker_count


def _read(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        sys.exit(0 if metadata_brokers(host, port) >= 1 else 1)
    except (OSError, RuntimeError, struct.error):
        sys.exit(1)
