"""A CPU-time sampling profiler for worker processes a bench starts (``bench/cpu_profile.py``
reads what it writes).

Python imports ``sitecustomize`` at start-up from the path; a bench puts this directory on
the workers' ``PYTHONPATH`` and sets ``NORCE_SYNC_CPU_SAMPLES`` to a directory. Each
process then samples its main thread's Python stack every 5 ms of its own CPU time
(``ITIMER_PROF`` counts user and system time of all its threads; the signal handler runs
on the main thread, where the event loop runs), counts the stacks per wall-clock second
and rewrites ``<dir>/<pid>.json`` every 2 s. A process that waits is not sampled at all.

Why not py-spy: on a machine with fewer cores than runnable processes it samples by
wall-clock and counts a thread that is runnable but not running as busy (about 3x the
real CPU with four workers on two cores, bench/RESULTS.md). Why not cProfile: it slowed
the projection about 13x. This costs one stack walk per 5 ms of CPU.
"""

import os

INTERVAL_S = 0.005


def _install(out_dir: str) -> None:
    import atexit
    import json
    import signal
    import threading
    import time

    counts: dict[tuple[int, str], int] = {}

    def sample(signum: int, frame: object) -> None:
        names = []
        while frame is not None:
            code = frame.f_code  # type: ignore[attr-defined]
            path = code.co_filename.rsplit("/site-packages/", 1)[-1]
            names.append(f"{path}:{code.co_name}")
            frame = frame.f_back  # type: ignore[attr-defined]
        key = (int(time.time()), ";".join(reversed(names)))
        counts[key] = counts.get(key, 0) + 1

    path = os.path.join(out_dir, f"{os.getpid()}.json")

    def dump() -> None:
        rows = [[second, stack, n] for (second, stack), n in list(counts.items())]
        with open(path + ".tmp", "w") as out:
            json.dump({"interval_s": INTERVAL_S, "samples": rows}, out)
        os.replace(path + ".tmp", path)

    def dump_every_2s() -> None:
        while True:
            time.sleep(2.0)
            dump()

    signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL_S, INTERVAL_S)
    threading.Thread(target=dump_every_2s, name="cpu-sampler", daemon=True).start()
    atexit.register(dump)


if os.environ.get("NORCE_SYNC_CPU_SAMPLES"):
    _install(os.environ["NORCE_SYNC_CPU_SAMPLES"])
