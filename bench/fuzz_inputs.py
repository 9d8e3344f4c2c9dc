"""Fuzz every input that comes from outside (contracts, rule trees, YAML, settings, bars files, names)
with hypothesis and print, per target, how many cases were accepted, refused with the module's own
error naming the field, file or row, or escaped as a defect. Derandomised: the same cases every run.

Run: ``.venv/bin/python bench/fuzz_inputs.py [--examples N]`` (N per target, default 1,250: 12,500
cases over the ten targets). Exits 1 when any case is unhandled, refused without a name, accepted
unsound, or slow, and prints the first failing examples.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
# The fuzzer calls the plain functions, never a Prefect task: no result storage to set up.
os.environ.setdefault("STRATLAB_STEP_CACHE", "off")

from input_fuzz import TARGETS, Tally, fuzz  # noqa: E402


def table(tallies: list[tuple[Tally, float]], wall: float) -> str:
    """The markdown table of outcomes per target, with the total."""
    lines = [
        "| target | cases | accepted | rejected (own error, named) | unhandled | unnamed / unsound / slow | s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t, took in tallies:
        lines.append(
            f"| {t.target} | {t.cases:,} | {t.accepted:,} | {t.rejected:,} | {t.unhandled} | {t.unsound} | {took:.1f} |"
        )
    total = [
        sum(getattr(t, k) for t, _ in tallies)
        for k in ("cases", "accepted", "rejected", "unhandled", "unsound")
    ]
    lines.append(
        f"| **total** | **{total[0]:,}** | {total[1]:,} | {total[2]:,} | **{total[3]}** | **{total[4]}** | {wall:.1f} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1250, help="cases per target (default 1250)")
    parser.add_argument("--only", default="", help="run only the targets whose name contains this")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
    warnings.simplefilter("ignore")  # pandas and numpy warnings about the bad data are the point
    began = time.perf_counter()
    tallies = []
    for target in TARGETS:
        if args.only and args.only not in target.name:
            continue
        start = time.perf_counter()
        tallies.append((fuzz(target, args.examples), time.perf_counter() - start))
        print(f"  {target.name}: done in {tallies[-1][1]:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - began
    print(table(tallies, wall))
    print(f"\nwall time {wall:.1f} s, {os.cpu_count()} CPUs")
    defects = [d for t, _ in tallies for d in t.defects]
    for defect in defects:
        print("\nDEFECT " + defect)
    return 0 if all(t.clean for t, _ in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
