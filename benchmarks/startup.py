"""Start-up time of the command line against `python -c pass`, measured in the same run.

Issue #13's goal: `mlthreat --version` and `mlthreat validate` start in under 0.3 s. Each command
runs --repeat times in a fresh process; the median wall time is printed with the difference to
the bare interpreter, so the figure is what mlthreat adds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "credit-scoring" / "pipeline.yaml"
GOAL = 0.3


def timed(argv: list[str], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()
    script = Path(sys.executable).with_name("mlthreat")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "mlthreat.cli"]
    runs = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import mlthreat'": [sys.executable, "-c", "import mlthreat"],
        "mlthreat --version": [*cli, "--version"],
        "mlthreat validate (reference case)": [*cli, "validate", str(SPEC)],
        "mlthreat catalog -f json": [*cli, "catalog", "-f", "json"],
    }
    timed(runs["mlthreat validate (reference case)"], 2)      # warm the file cache
    base = None
    print(f"{'command':38} {'median s':>9} {'min s':>7} {'+ over python':>14}")
    for name, argv in runs.items():
        times = timed(argv, args.repeat)
        median = statistics.median(times)
        base = median if base is None else base
        print(f"{name:38} {median:9.3f} {min(times):7.3f} {median - base:+14.3f}")
        if name.startswith("mlthreat --version") or name.startswith("mlthreat validate"):
            verdict = "meets" if median < GOAL else "MISSES"
            print(f"{'':38} goal < {GOAL} s: {verdict}")


if __name__ == "__main__":
    main()
