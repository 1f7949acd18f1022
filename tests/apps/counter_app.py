"""A minimal worker used by the foundation test: counts messages per key in a
changelog-backed table and reports each processed offset on an output topic.

Configured like the service, from ``NORCE_SYNC_*`` variables; the test names its topics
with ``COUNTER_IN`` and ``COUNTER_OUT``.
"""

from __future__ import annotations

import os

from faust.web import Request, Response, View

from streams.app import create_app
from streams.health import install_health_views
from streams.settings import Settings

app = create_app(Settings())
install_health_views(app)

source = app.topic(os.environ["COUNTER_IN"], internal=True, partitions=app.conf.topic_partitions)
processed = app.topic(os.environ["COUNTER_OUT"], internal=True, partitions=1)
counts = app.Table("counts", default=int, partitions=app.conf.topic_partitions)


@app.agent(source)
async def count(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        key = event.key.decode()
        counts[key] += 1
        await processed.send(
            key=event.key,
            value={
                "key": key,
                "count": counts[key],
                "partition": event.message.partition,
                "offset": event.message.offset,
            },
        )


@app.page("/counts")
async def show_counts(self: View, request: Request) -> Response:
    return self.json(dict(counts.items()))


if __name__ == "__main__":
    app.main()
