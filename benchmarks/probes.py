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

Model extraction (issue #3 goal: from labels only, reach with 1,000 queries at least the fidelity
ART's CopycatCNN reaches with 5,000): the victim is a PyTorch MLP trained here on the credit data;
its weights go to ART's process (loaded with weights_only=True). Queries come from the training
rows (natural; 3,454 of them, so ART's "5,000" is all of them) or Gaussian noise; fidelity is
agreement with the victim on the 1,000 test rows.

Black-box evasion (issue #3 goal: on HistGradientBoosting, XGBoost, LightGBM and a random forest,
at least BoundaryAttack's strength, median L2 no larger and success within L2 0.5 no smaller,
with at most a tenth of HopSkipJump's queries per point): mlthreat's labels-only attack with 230
queries per point against ART's HopSkipJump and BoundaryAttack on the same points, each ART run
capped at 15 minutes (HopSkipJump can loop forever on trees, BASELINES.md).

The whole `mlthreat assess` of the reference case with the default budget (goal: under 60 s).

Run: `.venv/bin/python benchmarks/probes.py [--references 32] [--only membership,extraction,...]`.
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
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from mlthreat.probes import Budget, SklearnAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.baselines import baseline_python, paired_figures  # noqa: E402
from mlthreat.probes.data import load_table
from mlthreat.probes.membership import (
    MembershipData,
    MembershipInference,
    logit_confidence,
    supported_fprs,
)
from mlthreat.probes.stats import median_interval, wilson
from mlthreat.probes.training import sklearn_fit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# torch: ART's "nn" attack model needs it (CPU pin; unpinned pulls a CUDA build); packaging: ART
# imports it without declaring it.
ART_PINS = ["torch==2.13.0", "adversarial-robustness-toolbox==1.20.1", "scikit-learn==1.9.1",
            "packaging", "xgboost-cpu", "lightgbm==4.7.0"]

EXTRACTION_HELPER = r'''
import json, sys, numpy as np, torch, warnings, logging
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
from art.estimators.classification import PyTorchClassifier
from art.attacks.extraction import CopycatCNN
d = np.load(sys.argv[1]); dim = d["x_pool"].shape[1]
def net():
    return torch.nn.Sequential(torch.nn.Linear(dim, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                               torch.nn.ReLU(), torch.nn.Linear(64, 2))
victim_net = net(); victim_net.load_state_dict(torch.load(sys.argv[2], weights_only=True))
def wrap(m):
    return PyTorchClassifier(model=m, loss=torch.nn.CrossEntropyLoss(), input_shape=(dim,),
                             nb_classes=2, optimizer=torch.optim.Adam(m.parameters(), 1e-3))
victim = wrap(victim_net)
reference = victim.predict(d["x_test"].astype(np.float32)).argmax(1)
out = {}
for source in ("natural", "gaussian"):
    for n in (1000, 5000):
        for seed in range(int(sys.argv[3])):
            torch.manual_seed(seed); np.random.seed(seed)
            noise = np.random.default_rng(seed).normal(size=(5000, dim))
            pool = d["x_pool"] if source == "natural" else noise
            n_used = min(n, len(pool))
            attack = CopycatCNN(classifier=victim, batch_size_fit=64, batch_size_query=64,
                                nb_epochs=30, nb_stolen=n_used, use_probability=False)
            stolen = attack.extract(pool.astype(np.float32), thieved_classifier=wrap(net()))
            copy = stolen.predict(d["x_test"].astype(np.float32)).argmax(1)
            out.setdefault(f"{source}-{n}", [n_used, []])[1].append(float((copy == reference).mean()))
print(json.dumps(out))
'''

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
    table = load_table(ROOT / "examples" / "credit-scoring" / "data" / "credit_data.csv",
                       target="Status", positive="bad", drop=("rownames",))
    return table.x, table.y


def credit_constraints() -> object:
    """The constraints `mlthreat probe` derives from the reference spec's probe block for the
    credit data (immutables, whole numbers, bounds, one-hot groups), over the same encoding."""
    import yaml

    from mlthreat.probes.constraints import from_transform
    table = load_table(ROOT / "examples" / "credit-scoring" / "data" / "credit_data.csv",
                       target="Status", positive="bad", drop=("rownames",))
    spec = yaml.safe_load((ROOT / "examples" / "credit-scoring" / "pipeline.yaml").read_text())
    block = next(c for c in spec["components"] if c["id"] == "scoring_api")["probe"]
    rules = block["constraints"]
    return from_transform(table.encoder.transform, table.frame, rules["immutable"],
                          {k: tuple(v) for k, v in rules["bounds"].items()}, rules["integer"])


def art_python() -> Path | None:
    return baseline_python("import art, xgboost, lightgbm", [ART_PINS], "ART")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--references", type=int, default=32)
    parser.add_argument("--no-art", action="store_true")
    parser.add_argument("--only",
                        default="membership,extraction,poisoning,evasion,blackbox,assess")
    parser.add_argument("--points", type=int, default=100, help="black-box evasion points")
    parser.add_argument("--rf-points", type=int, default=20,
                        help="black-box evasion points on the random forest (ART is slow there)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    python = None if args.no_art else art_python()
    if "membership" in only:
        membership(args, python)
    if "extraction" in only:
        extraction(python)
    if "poisoning" in only:
        poisoning()
    if "evasion" in only:
        evasion()
    if "blackbox" in only:
        blackbox(python, args.points, args.rf_points)
    if "assess" in only:
        assess_time()


def membership(args: argparse.Namespace, python: Path | None) -> None:
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
    non_members = int((~ev_member).sum())
    alpha = supported_fprs(non_members)[0]     # 10 false positives: 2 % at 500 non-members
    scored: dict[str, tuple[np.ndarray, float]] = {}    # attack -> (scores, seconds)
    evaluation = MembershipData(x[ev_idx], y[ev_idx], ev_member)
    for attack, label in (("threshold", "mlthreat loss threshold"),
                          ("reference", f"mlthreat reference attack ({args.references} "
                                        "reference models)")):
        # Reference models train on random halves of all rows: no membership label is used.
        data = evaluation if attack == "threshold" else MembershipData(
            x[ev_idx], y[ev_idx], ev_member, population_x=x, population_y=y,
            population_index=ev_idx)
        probe = MembershipInference(attack=attack, fit=sklearn_fit(rf),
                                    references=args.references, bootstrap=200, jobs=2)
        ev = probe.run(SklearnAdapter(rf), data, Budget(seed=0))
        # the scores that run used: the same seed, drawn first (MembershipInference.scores)
        observed = logit_confidence(rf.predict_proba(data.x), data.y)
        scored[label] = (probe.scores(observed, data, Budget(seed=0).rng()), ev.seconds)
        print(f"  {label}: {ev.summary}")
    ours = list(scored)[1]
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
                scored[f"ART black-box ({kind})"] = (np.array(art[kind]), seconds / 3)
    # Every figure on the same stratified resamples of the evaluation half (paired bootstrap)
    paired = paired_figures({n: sc for n, (sc, _) in scored.items()}, ev_member, alpha)
    head = f"TPR@{alpha:.0%}FPR"
    print(f"\nTPR read at {alpha:.0%} FPR, the lowest rate {non_members} non-members support "
          f"(10 false positives); 95 % intervals from 1,000 stratified resamples")
    print(f"{'attack':<46} {'AUC':>22} {head:>22} {'seconds':>8}")
    for name, (_, secs) in scored.items():
        auc, tpr = paired.point[name]
        (a_lo, t_lo), (a_hi, t_hi) = paired.interval(name)
        print(f"{name:<46} {auc:.3f} [{a_lo:.3f}, {a_hi:.3f}] {tpr:>7.3f} [{t_lo:.3f}, "
              f"{t_hi:.3f}] {secs:>8.1f}")
    arts = [n for n in scored if n.startswith("ART")]
    if arts:
        point, lo, hi, share = paired.ratio_to_best(ours, arts)
        best_auc = np.max([paired.boot[n][:, 0] for n in arts], axis=0)
        gap = paired.boot[ours][:, 0] - best_auc
        print(f"\nTPR at {alpha:.0%} FPR, mlthreat / best ART (best of the three on each "
              f"resample) = {point:.1f}x [{lo:.1f}, {hi:.1f}]; at least 2x in "
              f"{share:.0%} of resamples (goal: at least 2x)")
        print(f"AUC mlthreat minus best ART: {np.median(gap):+.3f} "
              f"[{np.percentile(gap, 2.5):+.3f}, {np.percentile(gap, 97.5):+.3f}] "
              "(goal: no lower)")


def train_mlp(x: np.ndarray, y: np.ndarray, seed: int = 0, epochs: int = 200) -> object:
    import torch
    torch.manual_seed(seed)
    dim = x.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(dim, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 128):
            j = perm[i:i + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[j]), yt[j]).backward()
            opt.step()
    return net


# Two credit MLP victims: trained 60 epochs, ART's CopycatCNN copies it as well as BASELINES.md's
# victim (0.906 / 0.940 here against 0.910 / 0.934; its test accuracy is 0.791 against 0.774);
# trained 200 epochs it overfits (0.761), the harder case the earlier sessions measured.
VICTIM_EPOCHS = (60, 200)
# Both attacks are random (which rows, which starting weights): one seed's fidelity moves by
# 0.005-0.02, so the goal is judged on the mean over seeds.
EXTRACTION_SEEDS = 5


def extraction(python: Path | None) -> None:
    x, y = credit()
    tr, te = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    for epochs in VICTIM_EPOCHS:
        _extraction_victim(python, x, y, tr, te, epochs)


def _extraction_victim(python: Path | None, x: np.ndarray, y: np.ndarray, tr: np.ndarray,
                       te: np.ndarray, epochs: int) -> None:
    import torch

    from mlthreat.adapters.torch import TorchAdapter
    from mlthreat.probes.extraction import ExtractionData, ModelExtraction
    net = train_mlp(x[tr], y[tr], epochs=epochs)
    victim = TorchAdapter(net)
    print(f"\ncredit MLP victim trained {epochs} epochs: test accuracy "
          f"{np.mean(victim.predict(x[te]) == y[te]):.3f}")
    rows: list[tuple[str, int, list[float]]] = []
    for source in ("natural", "gaussian"):
        for n in (1000, 5000):
            data = ExtractionData(x[te], pool=x[tr], y_eval=y[te])
            started = time.perf_counter()
            # the goal's setting over every seed; the others once (seed 0)
            seeds = range(EXTRACTION_SEEDS if (source, n) == ("natural", 1000) else 1)
            runs = [ModelExtraction(queries=n, source=source).run(victim, data, Budget(seed=s))
                    for s in seeds]
            rows.append((f"mlthreat label-only copy, {source}", runs[0].extra["queries_used"],
                         [ev.value for ev in runs]))
            voters = ", ".join(f"{k} {v:.3f}" for k, v in
                               runs[0].extra["copy_learner"]["voters_fidelity"].items())
            print(f"  mlthreat {source} {n}: {(time.perf_counter() - started) / len(runs):.1f} s "
                  f"a run; seed 0's voters alone: {voters}")
            first = runs[0].extra
            k_lo, k_hi = first["kappa_interval"]
            print(f"    seed 0: agreement {runs[0].value:.3f} [{runs[0].interval[0]:.3f}, "
                  f"{runs[0].interval[1]:.3f}], Cohen's kappa {first['kappa']:.3f} [{k_lo:.3f}, "
                  f"{k_hi:.3f}]; a constant copy agrees on {first['constant_copy_fidelity']:.3f} "
                  f"of these rows (kappa 0); confirmed: {runs[0].confirmed}")
    if python:
        with tempfile.TemporaryDirectory() as tmp:
            arrays, weights = Path(tmp) / "d.npz", Path(tmp) / "victim.pt"
            np.savez(arrays, x_pool=x[tr], x_test=x[te])
            torch.save(net.state_dict(), weights)
            helper = Path(tmp) / "art_ext.py"
            helper.write_text(EXTRACTION_HELPER)
            proc = subprocess.run([str(python), str(helper), str(arrays), str(weights),
                                   str(EXTRACTION_SEEDS)], capture_output=True, text=True,
                                  timeout=3600)
        if proc.returncode != 0:
            print(f"ART failed: {proc.stderr.strip().splitlines()[-1:]}")
        else:
            art = json.loads(proc.stdout.strip().splitlines()[-1])
            for key, (n_used, fidelities) in art.items():
                rows.append((f"ART CopycatCNN (labels), {key.split('-')[0]}", n_used, fidelities))
    print(f"{'attack':<40} {'queries':>8} {'seeds':>6} {'mean':>7} {'min':>7} {'max':>7}")
    for name, n, f in rows:
        print(f"{name:<40} {n:>8} {len(f):>6} {np.mean(f):>7.3f} {min(f):>7.3f} {max(f):>7.3f}")
    ours = max(np.mean(f) for name, n, f in rows if name.startswith("mlthreat") and n <= 1000)
    arts = [np.mean(f) for name, n, f in rows if name.startswith("ART")]
    if arts:
        verdict = "met" if ours >= max(arts) else "NOT met"
        print(f"label-only fidelity over {EXTRACTION_SEEDS} seeds: mlthreat with 1,000 queries "
              f"{ours:.3f} vs ART's best with up to 5,000 {max(arts):.3f} (goal: at least as "
              f"high): {verdict}")


# Debt and Amount (encoded columns 6 and 7) at +4 SD: clean models read it as "bad", so a
# backdoor that turns it into "good" (approve) measures the poison, not the trigger.
TRIGGER = [6, 7]


def poisoning() -> None:
    """BASELINES.md's poisoning set-up: retrain after poisoning, mean of 3 seeds; the baseline is
    the same model retrained on clean data with the same seeds, in this run."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from mlthreat.probes.poisoning import Poisoning, PoisoningData, sklearn_train
    x, y = credit()
    tr, te = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    data = PoisoningData(x[tr], y[tr], x[te], y[te])
    print("\npoisoning on credit (3 seeds; effect = poisoned minus clean retraining, same seeds)")
    for name, est in (("HistGradientBoosting", HistGradientBoostingClassifier()),
                      ("LogisticRegression", LogisticRegression(max_iter=1000))):
        flips = Poisoning(attack="label_flip", train=sklearn_train(est), rates=[0.05, 0.1, 0.2],
                          seeds=3, jobs=2).run(None, data, Budget(seed=0))
        door = Poisoning(attack="backdoor", train=sklearn_train(est), rates=[0.01], seeds=3,
                         jobs=2, target_class=0, features=TRIGGER, value=4.0).run(
                             None, data, Budget(seed=0))
        print(f"  {name}: accuracy lost at 5/10/20 % random flips "
              f"{' / '.join(f'{d:.3f}' for d in flips.series['accuracy_drop'])}; backdoor at 1 %: "
              f"clean models already {door.extra['clean_score']:.3f}, poisoned "
              f"{door.extra['poisoned_score']:.3f}, net {door.value:+.3f}")


BLACKBOX_HELPER = r'''
import json, sys, time, numpy as np, joblib, warnings, logging
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
from art.estimators.classification import BlackBoxClassifier
from art.attacks.evasion import BoundaryAttack, HopSkipJump
d = np.load(sys.argv[1]); kind, path, n, which = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
if kind == "xgboost":
    import xgboost; model = xgboost.XGBClassifier(n_jobs=1); model.load_model(path)
elif kind == "lightgbm":
    import lightgbm; booster = lightgbm.Booster(model_file=path)
    model = type("M", (), {"predict": lambda self, z: (booster.predict(z) > 0.5).astype(int)})()
else:
    model = joblib.load(path)
calls = [0, 0]
def labels(z):
    calls[0] += 1; calls[1] += len(z)
    return np.eye(2)[np.asarray(model.predict(z)).astype(int)]
clf = BlackBoxClassifier(labels, input_shape=(d["x"].shape[1],), nb_classes=2)
x = d["x"][:n].astype(np.float64)
out = {}
attacks = {"HopSkipJump": lambda: HopSkipJump(clf, max_iter=10, max_eval=1000, init_eval=100,
                                              verbose=False),
           "BoundaryAttack": lambda: BoundaryAttack(clf, targeted=False, max_iter=200,
                                                    verbose=False)}
for name in [which]:
    attack = attacks[name]()
    calls[:] = [0, 0]; np.random.seed(0); start = time.perf_counter()
    adv = attack.generate(x)
    secs = time.perf_counter() - start
    flipped = labels(adv).argmax(1) != labels(x).argmax(1)
    dist = np.where(flipped, np.linalg.norm(adv - x, axis=1), np.inf)
    out[name] = {"dist": [float(v) for v in dist], "rows": (calls[1] - 2 * n) / n,
                 "seconds": secs / n}
print(json.dumps(out))
'''


HSJ_ROWS = {"HistGradientBoosting": 2371, "XGBoost": 2432, "LightGBM": 2364, "random forest": 2363}


def blackbox(python: Path | None, points: int, rf_points: int) -> None:
    """Decision-based evasion on the four tree models of BASELINES.md (L2, standardised units):
    mlthreat's labels-only attack with at most 230 queries per point (a tenth of HopSkipJump's
    ~2,370) against ART's HopSkipJump and BoundaryAttack on the same models and points."""
    import lightgbm
    import xgboost
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlthreat.probes.blackbox import BlackBoxEvasion
    from mlthreat.probes.evasion import EvasionData
    x, y = credit()
    constraints = credit_constraints()
    tr, te = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    models = {
        "HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
        "XGBoost": xgboost.XGBClassifier(n_jobs=1, random_state=0),
        "LightGBM": lightgbm.LGBMClassifier(n_jobs=1, random_state=0, verbose=-1),
        "random forest": RandomForestClassifier(100, random_state=0, n_jobs=1)}
    print(f"\nblack-box (labels only) evasion, L2 in standardised units; {points} test points "
          f"({rf_points} for the random forest)")
    print(f"{'model':<22} {'attack':<34} {'rows/pt':>8} {'s/pt':>7} {'success':>8} "
          f"{'median L2 [95% CI]':>22} {'<=0.5 [95% CI]':>18} {'<=1.0':>6}")
    verdicts = []
    for name, est in models.items():
        est.fit(x[tr], y[tr])
        n = rf_points if name == "random forest" else points
        pts = x[te][:n]
        ev = BlackBoxEvasion(method="decision", queries=230, starts=8).run(
            SklearnAdapter(est), EvasionData(pts, pool=x[tr], pool_y=y[tr]), Budget(seed=0))
        rows = {"mlthreat decision (<=230 queries)": (
            np.array(ev.extra["minimal"]), ev.extra["queries_per_point"], ev.seconds / n)}
        most = ev.extra["max_queries_per_point"]   # the goal is per point: judge the largest
        more = BlackBoxEvasion(method="decision", queries=600, starts=20).run(
            SklearnAdapter(est), EvasionData(pts, pool=x[tr], pool_y=y[tr]), Budget(seed=0))
        rows["mlthreat decision (<=600 queries)"] = (
            np.array(more.extra["minimal"]), more.extra["queries_per_point"], more.seconds / n)
        # what `mlthreat probe` measures: the spec's constraints, every row a real record
        real = BlackBoxEvasion(method="decision", queries=230, starts=8).run(
            SklearnAdapter(est), EvasionData(pts, constraints, pool=x[tr], pool_y=y[tr]),
            Budget(seed=0))
        rows["mlthreat, spec constraints (<=230)"] = (
            np.array(real.extra["minimal"]), real.extra["queries_per_point"], real.seconds / n)
        if python:
            rows.update(_art_blackbox(python, name, est, pts, n))
        acc = float(np.mean(est.predict(x[te]) == y[te]))
        for attack, (dist, per_point, secs) in rows.items():
            m_lo, m_hi = median_interval(dist)
            w_lo, w_hi = wilson(float(np.mean(dist <= 0.5)), len(dist))
            print(f"{name + f' ({acc:.3f})':<22} {attack:<34} {per_point:>8.0f} {secs:>7.3f} "
                  f"{np.mean(np.isfinite(dist)):>8.2f} {np.median(dist):>7.3f} [{m_lo:.3f}, "
                  f"{m_hi:.3f}] {np.mean(dist <= 0.5):>5.2f} [{w_lo:.2f}, {w_hi:.2f}] "
                  f"{np.mean(dist <= 1.0):>6.2f}")
        if "BoundaryAttack" in rows:
            ours, ba = rows["mlthreat decision (<=230 queries)"], rows["BoundaryAttack"]
            # HopSkipJump can loop for ever on trees (and did on 300 HistGradientBoosting points):
            # then its rows per point from BASELINES.md, which do not depend on the points
            hsj, whose = ((rows["HopSkipJump"][1], "HopSkipJump's") if "HopSkipJump" in rows
                          else (HSJ_ROWS[name], "BASELINES.md's HopSkipJump"))
            ok = (np.median(ours[0]) <= np.median(ba[0]) and
                  np.mean(ours[0] <= 0.5) >= np.mean(ba[0] <= 0.5) and most <= hsj / 10)
            verdicts.append(f"  {name}: median L2 {np.median(ours[0]):.3f} vs BoundaryAttack "
                            f"{np.median(ba[0]):.3f}, within 0.5 {np.mean(ours[0] <= 0.5):.3f} vs "
                            f"{np.mean(ba[0] <= 0.5):.3f}, at most {most} queries a point "
                            f"(mean {ours[1]:.0f}) = {hsj / most:.1f}x fewer than "
                            f"{whose} {hsj:.0f}: {'goal met' if ok else 'goal NOT met'}")
    print("\n".join(verdicts))


def _art_blackbox(python: Path, name: str, est: object, pts: np.ndarray, n: int,
                  timeout: float = 900) -> dict[str, tuple[np.ndarray, float, float]]:
    import joblib
    with tempfile.TemporaryDirectory() as tmp:
        arrays, helper = Path(tmp) / "d.npz", Path(tmp) / "art_bb.py"
        np.savez(arrays, x=pts)
        helper.write_text(BLACKBOX_HELPER)
        kind = {"XGBoost": "xgboost", "LightGBM": "lightgbm"}.get(name, "sklearn")
        path = Path(tmp) / "model"
        if kind == "xgboost":
            path = path.with_suffix(".json")
            est.save_model(path)  # type: ignore[attr-defined]
        elif kind == "lightgbm":
            est.booster_.save_model(path)  # type: ignore[attr-defined]
        else:
            joblib.dump(est, path)
        out = {}
        for attack in ("HopSkipJump", "BoundaryAttack"):
            try:   # HopSkipJump can loop forever on tree models (BASELINES.md): cap it
                proc = subprocess.run([str(python), str(helper), str(arrays), kind, str(path),
                                       str(n), attack], capture_output=True, text=True,
                                      timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"  ART {attack} on {name}: no result within {timeout} s")
                continue
            if proc.returncode != 0:
                print(f"  ART {attack} on {name} failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            art = json.loads(proc.stdout.strip().splitlines()[-1])
            out.update({k: (np.array(v["dist"]), v["rows"], v["seconds"]) for k, v in art.items()})
    return out


def assess_time(goal: float = 60.0) -> None:
    """Issue #3: the whole `mlthreat assess` of the reference case (three models, every probe,
    default budget) in under 60 s on this machine; run as a user runs it, in a fresh process."""
    spec = ROOT / "examples" / "credit-scoring" / "pipeline.yaml"
    exe = Path(sys.executable).parent / "mlthreat"
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([str(exe), "assess", str(spec), "--out-dir", tmp],
                              capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        print(f"assess failed: {proc.stderr.strip().splitlines()[-1:]}")
        return
    done = proc.stderr.count("✓ ")
    print(f"\nmlthreat assess of the reference case (standard budget, {done} probes measured): "
          f"{seconds:.1f} s = {seconds / goal:.2f} of the {goal:.0f} s goal "
          f"({'goal met' if seconds < goal else 'goal NOT met'})")


def evasion() -> None:
    """White-box PGD (L-infinity, 40 steps) on the 1,000 credit test rows, standardised units, as
    BASELINES.md's white-box table (ART PGD: LR 0.13 / 0.54 and MLP 0.28 / 0.78 at 0.1 / 0.3)."""
    import torch

    from mlthreat.adapters.torch import TorchAdapter
    from mlthreat.probes.evasion import EvasionData, WhiteBoxEvasion
    x, y = credit()
    tr, te = train_test_split(np.arange(len(y)), test_size=1000, stratify=y, random_state=0)
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], 2)
    opt = torch.optim.Adam(lin.parameters(), 1e-2)
    xt, yt = torch.tensor(x[tr], dtype=torch.float32), torch.tensor(y[tr])
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xt), yt).backward()
        opt.step()
    print("\nwhite-box PGD (L-inf) on 1,000 credit test rows")
    for name, module in (("logistic regression", lin), ("MLP", train_mlp(x[tr], y[tr]))):
        model = TorchAdapter(module)
        ev = WhiteBoxEvasion(norm="linf", epsilons=[0.1, 0.3], search=8).run(
            model, EvasionData(x[te]), Budget())
        acc = np.mean(model.predict(x[te]) == y[te])
        rates = ev.series["success_rate"]
        print(f"  {name} (test accuracy {acc:.3f}): success {rates[0]:.2f} at 0.1, "
              f"{rates[1]:.2f} at 0.3; median minimal L-inf change "
              f"{ev.extra['median_minimal_perturbation']:.3f}; {ev.seconds:.2f} s")


if __name__ == "__main__":
    main()
