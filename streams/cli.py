"""Entry point of the ``norce-sync`` console script: the Faust command line of the app.

``norce-sync worker`` starts a worker; the project's own commands (``simulator``,
``full-import``, ``jobs``, ``dlq``) are Faust app commands registered in :mod:`agents`.
"""

from __future__ import annotations


def main() -> None:
    from streams.main import app

    app.main()


if __name__ == "__main__":
    main()
