"""Ingest: change data from the input topics -> decoded, validated, mapped changes on the
changes topic, re-keyed by ``source|kind|key``. Anything that fails goes to the
dead-letter topic with its original bytes and the stream goes on."""

from __future__ import annotations

from agents.config.mapping import to_mapped
from agents.imports.cdc import decode
from streams import metrics
from streams.dead_letters import note_dead_letter
from streams.main import app
from streams.pipeline import changes, config, dlq, inputs
from streams.records import DeadLetter, PipelineError, Stage


async def dead_letter(letter: DeadLetter) -> None:
    note_dead_letter(letter)
    await dlq.send(key=(letter.state_key or "").encode() or None, value=letter.to_bytes())


@app.agent(inputs)
async def ingest(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        message = event.message
        binding = config.binding_for_topic(message.topic)
        try:
            change = decode(event.value, event.key, binding)
            if change is None:  # a tombstone after a delete: the delete itself counted
                continue
            mapped = to_mapped(change, binding)
        except PipelineError as error:
            failure: PipelineError = error
        except Exception as error:  # a mapping hook's bug must not stop the stream
            failure = PipelineError(Stage.MAP, f"{type(error).__name__}: {error}")
        else:
            metrics.events_in.inc(source=binding.source, kind=binding.kind)
            await changes.send(
                key=mapped.state_key.encode(),
                value={
                    "type": "change",
                    "v": [mapped.version.ts_ms, mapped.version.position],
                    "row": mapped.row,
                    "d": mapped.deleted,
                },
            )
            continue
        await dead_letter(
            DeadLetter.from_error(
                failure,
                key=event.key,
                value=event.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
        )
