"""norce-sync's composition root: :func:`norce_sync.worker.build` builds the worker (the
Faust app and every service of every flow, dependencies passed in), and
:mod:`norce_sync.cli` is the ``norce-sync`` console script that runs it. Nothing else
constructs a service; nothing is constructed at import."""
