"""A CPU-time sampling profiler for worker processes a bench starts (``bench/cpu_profile.py``
reads what it writes).

Python imports ``sitecustomize`` at start-up from the path; a bench puts this directory on
the workers' ``PYTHONPATH`` and sets ``NORCE_SYNC_CPU_SAMPLES`` to a directory. Each
process then samples its main thread's Python stack every 5 ms of its own CPU time
(``ITIMER_PROF`` counts user and system time of all its threads; the signal handler runs
on the main thread, where the event loop runs), weighs each sample by the process CPU
time since the one before (a long C call delivers one signal for several periods; time
of other threads counts to the main thread's next frame), sums them per 0.1 s of wall
clock and rewrites ``<dir>/<pid>.json`` every 2 s and at exit. A process that waits is
not sampled at all.

Why not py-spy: on a machine with fewer cores than runnable processes it samples by
wall-clock and counts a thread that is runnable but not running as busy (about 3x the
real CPU with four workers on two cores, bench/RESULTS.md). Why not cProfile: it slowed
the projection about 13x. This costs one stack walk per 5 ms of CPU.
"""

import os

INTERVAL_S = 0.005
BUCKET_S = 0.1


def _install(out_dir: str) -> None:
    import atexit
    import json
    import signal
    import threading
    import time

    seconds: dict[tuple[int, str], float] = {}  # (0.1 s bucket, stack) -> CPU seconds
    last_cpu = [time.process_time()]
    lock = threading.Lock()

    def sample(signum: int, frame: object) -> None:
        now_cpu = time.process_time()
        spent, last_cpu[0] = now_cpu - last_cpu[0], now_cpu
        names = []
        while frame is not None:
            code = frame.f_code  # type: ignore[attr-defined]
            path = code.co_filename.rsplit("/site-packages/", 1)[-1]
            names.append(f"{path}:{code.co_name}")
            frame = frame.f_back  # type: ignore[attr-defined]
        key = (int(time.time() / BUCKET_S), ";".join(reversed(names)))
        seconds[key] = seconds.get(key, 0.0) + spent

    path = os.path.join(out_dir, f"{os.getpid()}.json")

    def dump() -> None:
        with lock:  # the periodic dump and the one at exit write the same files
            rows = [[b * BUCKET_S, stack, s] for (b, stack), s in list(seconds.items())]
            with open(path + ".tmp", "w") as out:
                json.dump({"bucket_s": BUCKET_S, "samples": rows}, out)
            os.replace(path + ".tmp", path)

    def dump_every_2s() -> None:
        while True:
            time.sleep(2.0)
            dump()

    signal.signal(signal.SIGPROF, sample)
    signal.siginterrupt(signal.SIGPROF, False)  # restart system calls it interrupts
    signal.setitimer(signal.ITIMER_PROF, INTERVAL_S, INTERVAL_S)
    threading.Thread(target=dump_every_2s, name="cpu-sampler", daemon=True).start()
    atexit.register(dump)


if os.environ.get("NORCE_SYNC_CPU_SAMPLES"):
    _install(os.environ["NORCE_SYNC_CPU_SAMPLES"])
