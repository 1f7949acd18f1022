"""Run every benchmark in turn and print each one's JSON line (`make bench`).

Each script starts its own broker unless KAFKA_BOOTSTRAP_SERVERS is set. Copy the
figures into bench/RESULTS.md with the date and the machine's load.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["bench_ingest.py", "--events", "200000", "--keys", "10000", "--partitions", "4"],
    ["bench_state_scale.py", "--keys", "1000000"],
    ["bench_state_scale.py", "--keys", "1000000", "--wipe-store"],
    ["bench_kill_sweep.py"],
    ["bench_kill_sweep.py", "--no-kills", "--no-faults"],
    ["bench_mapping.py", "--events", "100000"],
    ["bench_full_import.py", "--keys", "1000000"],
    ["bench_reconcile.py", "--keys", "1000000"],
    ["bench_reconcile.py", "--kind", "stock", "--keys", "1000000"],
    ["bench_connect_stream.py"],
    ["bench_references.py", "--skus", "1000000", "--rows", "10000"],
    ["bench_simulator_stream.py"],
    ["bench_export_latency.py"],
    ["bench_scale.py"],
]


def main() -> int:
    failed = 0
    for script, *args in RUNS:
        print(f"== {script} {' '.join(args)}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE.parent)
        failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
