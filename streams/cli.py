"""Entry point of the ``norce-sync`` console script: the Faust command line of the app.

``norce-sync worker`` starts a worker; the project's own commands (``simulator``,
``full-import``, ``jobs``, ``dlq``) are Faust app commands registered in :mod:`agents`.
"""

from __future__ import annotations


def main() -> None:
    from streams.main import app

    # Faust takes the app's origin from argv[0] when none is set; "norce-sync" is no
    # module, and autodiscovery would fail to import it. (Set as Faust's prepare_app does.)
    if app.conf.origin is None:
        app.conf._origin = "streams.main"
    app.main()


if __name__ == "__main__":
    main()
