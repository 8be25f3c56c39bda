"""Time of the exact McNemar test: `mcnemar_p` (floating point, from the mode outwards) vs the
textbook sum of big-integer binomials it replaced, on tables with n discordant pairs.

    python benchmarks/mcnemar_speed.py [--sizes 1000,5000,20000]

The old sum takes seconds from a few thousand pairs on (about 25 s at 20000), so the largest
size dominates the run. The p-values of both are printed with their relative difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from math import comb
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pwd_git.evaluate.verdict import mcnemar_p  # noqa: E402


def bigint_p(broke: int, fixed: int) -> float:
    """The previous implementation: sum of C(n, k) for k >= broke, over 2^n."""
    n = broke + fixed
    if n == 0:
        return 1.0
    return sum(comb(n, k) for k in range(broke, n + 1)) / 2**n


def timed(fn, *args) -> tuple[float, float]:
    """(result, seconds per call): repeats fast calls so the clock resolution does not matter."""
    calls, start = 0, time.perf_counter()
    while True:
        result = fn(*args)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed > 0.2 or calls >= 1000:
            return result, elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000", help="discordant pairs per table, comma-separated")
    args = parser.parse_args()
    print(f"{'pairs':>7} {'broke':>6} {'p (new)':>12} {'rel. diff':>9} {'new':>9} {'big-int':>9} {'ratio':>9}")
    for n in (int(s) for s in args.sizes.split(",")):
        broke = n // 2 + int(n**0.5)  # about two standard deviations above even: p near 0.02
        new, t_new = timed(mcnemar_p, broke, n - broke)
        old, t_old = timed(bigint_p, broke, n - broke)
        print(f"{n:>7} {broke:>6} {new:>12.6g} {abs(new - old) / old:>9.1e} {t_new * 1e6:>7.0f}us "
              f"{t_old:>8.3f}s {t_old / t_new:>8.0f}x")


if __name__ == "__main__":
    main()
