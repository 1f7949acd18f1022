"""The ``norce-sync`` console script: builds the worker (:func:`norce_sync.worker.build`)
and runs the Faust command line of its app (``norce-sync worker`` starts a worker; the
project's own commands are registered by the flows when they are installed).

A config mistake is reported the same way by every command: one ``file: path: problem``
line per problem on stderr and exit status 78 (``EX_CONFIG``), never a traceback
(:func:`streams.cli.run`)."""

from __future__ import annotations

from collections.abc import Sequence

from streams.cli import run


def main(argv: Sequence[str] | None = None) -> None:
    from norce_sync.worker import build

    run(argv, lambda: build().app, origin="norce_sync.worker")


if __name__ == "__main__":
    main()
