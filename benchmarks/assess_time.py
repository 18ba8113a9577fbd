"""`mlthreat assess` of the reference case, this checkout against an earlier revision, in the
same run: the refactoring of issue #13 (one driver, typed evidence, plug-in probes) must not make
it slower.

The earlier revision is checked out with `git worktree` into a temporary folder and run with the
same interpreter and packages (its `src` first on PYTHONPATH). Runs alternate between the two in
ABBA order (before, now, now, before, ...), so that neither always runs second, and the
machine's drift hits both; the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "credit-scoring" / "pipeline.yaml"
BEFORE = "6019c1d"   # main before issue #13 (the last commit of the previous session)


def run(src: Path, out: Path, budget: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlthreat.cli", "assess", str(SPEC), "--budget",
                    budget, "--out-dir", str(out), "--force"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BEFORE, help="the earlier revision (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--budget", default="standard", choices=["quick", "standard", "thorough"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                        args.before], check=True, capture_output=True)
        try:
            times: dict[str, list[float]] = {"before": [], "now": []}
            pair = (("before", old / "src"), ("now", ROOT / "src"))
            for i in range(args.repeat):
                for name, src in pair if i % 2 == 0 else pair[::-1]:
                    times[name].append(run(src, Path(tmp) / f"{name}{i}", args.budget))
                    print(f"  run {i + 1} {name:6} {times[name][-1]:6.1f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=False, capture_output=True)
    before, now = statistics.median(times["before"]), statistics.median(times["now"])
    print(f"assess of the reference case, budget {args.budget}, median of {args.repeat}:")
    print(f"  before ({args.before}) {before:6.1f} s   now {now:6.1f} s   ratio now/before "
          f"{now / before:.3f}  ({'not slower' if now <= before * 1.03 else 'SLOWER'}; "
          "within 3 % counts as level)")


if __name__ == "__main__":
    main()
