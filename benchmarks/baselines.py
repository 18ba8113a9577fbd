"""The virtual environment the benchmarks run their reference tools in (ART, torchattacks),
apart from mlthreat's own: benchmarks/.baselines-venv, created on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".baselines-venv"


def baseline_python(check: str, installs: list[list[str]], what: str) -> Path | None:
    """The venv's python once `check` (Python code) runs there, after installing each list of
    `installs` in turn if it did not; None (with the reason printed) when that fails."""
    python = VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        if subprocess.run([str(python), "-c", check], capture_output=True).returncode != 0:
            print(f"installing {', '.join(p for pins in installs for p in pins)} into {VENV} "
                  "(first run only) …")
            for pins in installs:
                subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins],
                               check=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"{what} unavailable ({exc}); reporting mlthreat alone")
        return None
    return python
