"""Probe benchmarks against ART 1.20.1, in one run on the real credit data.

Membership inference (issue #3 goal: on the fully grown random forest, TPR at 1 % FPR at least
twice ART's best black-box attack, and AUC no lower). Set-up as BASELINES.md: modeldata's
credit_data, median/mode imputation, one-hot, standardised; 1,000 stratified test rows, seed 0;
random forest of 100 fully grown trees. Members are the training rows, non-members the test rows.
Candidates are split in half (stratified by membership): ART's attack models train on the first
half *with* membership labels (its documented use); mlthreat's reference attack never sees a
membership label (its reference models train on random halves of all rows, data the attacker
could have). Both are scored on the second half.

ART runs in benchmarks/.baselines-venv (created on first run with ART, scikit-learn 1.9.1 and
`packaging`, which ART imports without declaring), on the same arrays and the same seeded model.

Run: `.venv/bin/python benchmarks/probes.py [--references 16]`. Evasion, poisoning and extraction
are added here as their probes land.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlthreat.probes import Budget, SklearnAdapter
from mlthreat.probes.membership import (
    MembershipData,
    MembershipInference,
    sklearn_fit,
    tpr_at_fpr,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".baselines-venv"
# torch: ART's "nn" attack model needs it (CPU pin; unpinned pulls a CUDA build); packaging: ART
# imports it without declaring it.
ART_PINS = ["torch==2.13.0", "adversarial-robustness-toolbox==1.20.1", "scikit-learn==1.9.1",
            "packaging"]

HELPER = r'''
import json, sys, numpy as np, warnings, logging
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
from sklearn.ensemble import RandomForestClassifier
from art.estimators.classification import SklearnClassifier
from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
d = np.load(sys.argv[1])
rf = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(d["x_train"], d["y_train"])
out = {"test_accuracy": float(rf.score(d["x_test"], d["y_test"]))}
for kind in ("gb", "rf", "nn"):
    attack = MembershipInferenceBlackBox(SklearnClassifier(model=rf), attack_model_type=kind)
    attack.fit(d["xa_in"], d["ya_in"], d["xa_out"], d["ya_out"])
    scores = attack.infer(d["xe"], d["ye"], probabilities=True)
    out[kind] = np.asarray(scores).reshape(len(d["ye"]), -1)[:, -1].tolist()
print(json.dumps(out))
'''


def credit() -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(ROOT / "examples" / "credit-scoring" / "data" / "credit_data.csv")
    df = df.drop(columns=["rownames"])
    y = (df.pop("Status") == "bad").astype(int).to_numpy()
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    cat = [c for c in df.columns if c not in num]
    enc = ColumnTransformer([
        ("n", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), num),
        ("c", make_pipeline(SimpleImputer(strategy="most_frequent"),
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False)), cat)])
    return enc.fit_transform(df), y


def art_python() -> Path | None:
    python = VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        probe = subprocess.run([str(python), "-c", "import art"], capture_output=True)
        if probe.returncode != 0:
            print(f"installing {', '.join(ART_PINS)} into {VENV} (first run only) …")
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *ART_PINS],
                           check=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"ART unavailable ({exc}); reporting mlthreat alone")
        return None
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--references", type=int, default=32)
    parser.add_argument("--no-art", action="store_true")
    args = parser.parse_args()
    x, y = credit()
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=1000, stratify=y, random_state=0)
    rf = RandomForestClassifier(100, random_state=0, n_jobs=2).fit(x[tr], y[tr])
    cand = np.concatenate([tr, te])
    member = np.r_[np.ones(len(tr), bool), np.zeros(len(te), bool)]
    attack_half, eval_half = train_test_split(np.arange(len(cand)), test_size=0.5,
                                              stratify=member, random_state=0)
    ev_idx, ev_member = cand[eval_half], member[eval_half]
    print(f"credit random forest: train accuracy {rf.score(x[tr], y[tr]):.3f}, test "
          f"{rf.score(x[te], y[te]):.3f}; evaluation half: {int(ev_member.sum())} members, "
          f"{int((~ev_member).sum())} non-members")
    rows: list[tuple[str, float, float, float, float]] = []
    evaluation = MembershipData(x[ev_idx], y[ev_idx], ev_member)
    for attack, label in (("threshold", "mlthreat loss threshold"),
                          ("reference", f"mlthreat reference attack ({args.references} "
                                        "reference models)")):
        # Reference models train on random halves of all rows: no membership label is used.
        data = evaluation if attack == "threshold" else MembershipData(
            x[ev_idx], y[ev_idx], ev_member, population_x=x, population_y=y,
            population_index=ev_idx)
        ev = MembershipInference(attack=attack, fit=sklearn_fit(rf), references=args.references,
                                 bootstrap=200, jobs=2).run(SklearnAdapter(rf), data,
                                                            Budget(seed=0))
        rows.append((label, ev.value, ev.extra["tpr_at_1pct_fpr"], ev.extra["tpr_at_01pct_fpr"],
                     ev.seconds))
        print(f"  {label}: {ev.summary}")
    python = None if args.no_art else art_python()
    if python:
        with tempfile.TemporaryDirectory() as tmp:
            arrays = Path(tmp) / "d.npz"
            a_in, a_out = cand[attack_half][member[attack_half]], cand[attack_half][
                ~member[attack_half]]
            np.savez(arrays, x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te],
                     xa_in=x[a_in], ya_in=y[a_in], xa_out=x[a_out], ya_out=y[a_out],
                     xe=x[ev_idx], ye=y[ev_idx])
            helper = Path(tmp) / "art_mi.py"
            helper.write_text(HELPER)
            start = time.perf_counter()
            proc = subprocess.run([str(python), str(helper), str(arrays)], capture_output=True,
                                  text=True, timeout=3600, env={**os.environ, "PYTHONWARNINGS":
                                                                "ignore"})
            seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print(f"ART failed: {proc.stderr.strip().splitlines()[-1:]}")
        else:
            art = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"ART's copy of the forest: test accuracy {art['test_accuracy']:.3f}")
            for kind in ("gb", "rf", "nn"):
                scores = np.array(art[kind])
                rows.append((f"ART black-box ({kind})", roc_auc_score(ev_member, scores),
                             tpr_at_fpr(scores, ev_member, 0.01),
                             tpr_at_fpr(scores, ev_member, 0.001), seconds / 3))
    print(f"\n{'attack':<46} {'AUC':>6} {'TPR@1%FPR':>10} {'TPR@0.1%':>9} {'seconds':>8}")
    results = {}
    for name, auc, t1, t01, secs in rows:
        results[name] = (auc, t1)
        print(f"{name:<46} {auc:>6.3f} {t1:>10.3f} {t01:>9.3f} {secs:>8.1f}")
    arts = {k: v for k, v in results.items() if k.startswith("ART")}
    ours = results[rows[1][0]]
    if arts:
        best_tpr = max(v[1] for v in arts.values())
        best_auc = max(v[0] for v in arts.values())
        ratio = ours[1] / best_tpr if best_tpr else float("inf")
        print(f"\nTPR at 1% FPR: mlthreat / best ART = {ratio:.1f}x (goal: at least 2x); "
              f"AUC {ours[0]:.3f} vs best ART {best_auc:.3f} (goal: no lower)")


if __name__ == "__main__":
    main()
