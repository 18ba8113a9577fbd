"""The virtual environment the benchmarks run their reference tools in (ART, torchattacks),
apart from mlthreat's own: benchmarks/.baselines-venv, created on first use."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


@dataclass
class Paired:
    """Membership attacks compared on the same stratified resamples of the evaluation half
    (paired bootstrap: a ratio of two TPRs read at a handful of false positives moves a lot from
    sample to sample). `point[name]` and `boot[name]` (resamples x 2) hold (AUC, TPR at alpha)."""

    point: dict[str, tuple[float, float]]
    boot: dict[str, np.ndarray]

    def interval(self, name: str) -> tuple[tuple[float, float], tuple[float, float]]:
        """((AUC low, TPR low), (AUC high, TPR high)): the 95 % percentile interval."""
        lo, hi = np.percentile(self.boot[name], [2.5, 97.5], axis=0)
        return (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1]))

    def ratio_to_best(self, ours: str, others: list[str]) -> tuple[float, float, float, float]:
        """Our TPR over the best of `others` (the best on each resample): the point ratio, its
        95 % interval and the share of resamples where it is at least 2."""
        best = np.max([self.boot[n][:, 1] for n in others], axis=0)
        ratio = self.boot[ours][:, 1] / np.maximum(best, 1e-12)
        point = self.point[ours][1] / max(max(self.point[n][1] for n in others), 1e-12)
        lo, hi = np.percentile(ratio, [2.5, 97.5])
        return point, float(lo), float(hi), float(np.mean(ratio >= 2))


def paired_figures(scores: dict[str, np.ndarray], member: np.ndarray, alpha: float,
                   resamples: int = 1000, seed: int = 0) -> Paired:
    """AUC and TPR at `alpha` FPR of every attack's scores, on the whole evaluation half and on
    the same stratified resamples of it."""
    from sklearn.metrics import roc_auc_score

    from mlthreat.probes.membership import tpr_at_fpr
    rng = np.random.default_rng(seed)
    ins, outs = np.flatnonzero(member), np.flatnonzero(~member)
    draws = [np.concatenate([rng.choice(ins, len(ins)), rng.choice(outs, len(outs))])
             for _ in range(resamples)]

    def figures(sc: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
        return (float(roc_auc_score(member[idx], sc[idx])), tpr_at_fpr(sc[idx], member[idx], alpha))
    every = np.arange(len(member))
    return Paired({n: figures(sc, every) for n, sc in scores.items()},
                  {n: np.array([figures(sc, d) for d in draws]) for n, sc in scores.items()})
