"""Read the CPU samples ``bench/cpu_sampler`` wrote for a bench's workers (``bench_scale.py
--cpu-profile DIR``): where each measuring window's CPU went, and what grew between two.

    .venv/bin/python bench/cpu_profile.py DIR                      # every window's top frames
    .venv/bin/python bench/cpu_profile.py DIR --diff r1-w1 r1-w4   # what grew from one to another
    .venv/bin/python bench/cpu_profile.py DIR --diff r1-w1 r1-w4 --inclusive --top 40

Figures are CPU seconds per 100,000 events (the window's ``events``), summed over the
window's processes: ``self`` is a frame's own time (the innermost Python frame sampled;
time in C code counts to the Python frame that called it), ``--inclusive`` its time
with everything it called. ``DIR/windows.json`` lists the windows (label, wall-clock
start and end, pids, events); ``DIR/<pid>.json`` the sampled CPU seconds per stack and
0.1 s of wall clock.
"""

from __future__ import annotations

import argparse
import collections
import json
import sysconfig
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1]) + "/"
STDLIB = sysconfig.get_paths()["stdlib"] + "/"


def window_samples(directory: Path, window: dict) -> collections.Counter[str]:
    """The stacks sampled in the window's processes during it, in CPU seconds."""
    stacks: collections.Counter[str] = collections.Counter()
    for pid in window["pids"]:
        path = directory / f"{pid}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        for start, stack, seconds in data["samples"]:
            # Buckets of 0.1 s that overlap the window count in full.
            if window["start"] - data["bucket_s"] < start <= window["end"]:
                stacks[stack.replace(ROOT, "").replace(STDLIB, "")] += seconds
    return stacks


def by_frame(stacks: collections.Counter[str], inclusive: bool) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for stack, seconds in stacks.items():
        frames = stack.split(";")
        for frame in set(frames) if inclusive else frames[-1:]:
            out[frame] += seconds
    return out


def per_100k(frames: collections.Counter[str], events: int) -> dict[str, float]:
    return {f: s * 100_000 / events for f, s in frames.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path)
    parser.add_argument("--diff", nargs=2, metavar=("BASE", "OTHER"), help="two window labels")
    parser.add_argument("--inclusive", action="store_true", help="a frame with its callees")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    windows = {w["label"]: w for w in json.loads((args.dir / "windows.json").read_text())}
    profiles = {}
    for label, w in windows.items():
        stacks = window_samples(args.dir, w)
        total = sum(stacks.values())
        print(
            f"{label}: sampled {total:.2f} CPU s (measured {w['cpu_s']:.2f}), "
            f"{total * 100_000 / w['events']:.3f} per 100k events"
        )
        profiles[label] = per_100k(by_frame(stacks, args.inclusive), w["events"])
    if args.diff:
        base, other = (profiles[label] for label in args.diff)
        rows = sorted(set(base) | set(other), key=lambda f: other.get(f, 0) - base.get(f, 0))
        print(f"\n{'grew':>7} {args.diff[0]:>9} {args.diff[1]:>9}  frame (CPU s per 100k events)")
        for frame in reversed(rows[-args.top :]):
            b, o = base.get(frame, 0.0), other.get(frame, 0.0)
            print(f"{o - b:7.3f} {b:9.3f} {o:9.3f}  {frame}")
        return
    for label, frames in profiles.items():
        print(f"\n{label}")
        for frame, seconds in sorted(frames.items(), key=lambda x: -x[1])[: args.top]:
            print(f"{seconds:7.3f}  {frame}")


if __name__ == "__main__":
    main()
