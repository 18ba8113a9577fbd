"""Scanners and discover on public repositories, judged by reading the code (issue #15).

The corpus is `benchmarks/realrepos/corpus.yaml` (owner/name, commit, licence, tune or holdout
set, the components a careful engineer would draw); the judgments are
`benchmarks/realrepos/judged/OWNER+NAME.yaml`: each finding judged TP or FP with a one-line
reason (by rule, file and line; a `file` glob without `line` judges every finding of that rule in
the matching files at once, for per-requirement findings), and `missed` problems a scanner should
have found. Nothing of the repositories themselves is committed: the script reads snapshots that
are on this machine: `--snapshots DIR` (or MLTHREAT_SNAPSHOTS) holds one git directory per
repository, DIR/OWNER+NAME/repo (as `fetch` leaves them) or a clone DIR/OWNER+NAME/.git, and the
listed commit is extracted into a temporary folder; a repository without one is skipped and said
so.

Prints, per scanner: TP, FP, unjudged, precision with its Wilson 95 % interval, recall where
missed problems are recorded; discover's component recall (kinds drawn / kinds expected); and,
for repositories whose entry lists `aml` classes, how the adversarial-ML threats of the drafted
spec compare with them: the drafted spec is threat-modelled as a user would (`mlthreat model`:
placement and scoring, no scan, no probe), each adversarial-ML finding counts for its threat's
class (CLASSES), and the classes found are compared with those expected (recall and precision
over all (repository, class) pairs, with Wilson intervals; each miss and extra named).
`--set holdout` runs the repositories that were never looked at while tuning.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent / "realrepos"
sys.path.insert(0, str(HERE.parents[1] / "src"))

from mlthreat import Assessor, load_catalog, load_pipeline  # noqa: E402
from mlthreat.catalog import Catalog  # noqa: E402
from mlthreat.errors import MlthreatError  # noqa: E402
from mlthreat.scanners import scan_paths  # noqa: E402
from mlthreat.scanners.discover import Draft, discover, to_yaml  # noqa: E402

# every adversarial-ML threat of the catalog in one class of corpus.yaml's `aml` lists (the
# header of corpus.yaml says what a careful engineer lists each class for)
CLASSES = {
    "evasion": ("aml-evasion-blackbox", "aml-evasion-whitebox", "aml-evasion-transfer",
                "aml-proxy-evasion", "aml-insider-evasion", "aml-monitor-evasion",
                "aml-physical-adversarial", "aml-capture-spoofing"),
    "reconnaissance": ("aml-model-fingerprinting",),
    "extraction": ("aml-model-extraction", "aml-insider-extraction", "aml-output-side-channel"),
    "privacy": ("aml-membership-inference", "aml-attribute-inference", "aml-property-inference",
                "aml-training-data-reconstruction"),
    "availability": ("aml-resource-exhaustion", "aml-llm-cost-harvesting"),
    "data-poisoning": ("aml-poisoning-label-flip", "aml-poisoning-clean-label",
                       "aml-poisoning-targeted", "aml-poisoning-availability",
                       "aml-poisoned-public-dataset", "aml-feedback-loop-manipulation"),
    "backdoor": ("aml-backdoor-data", "aml-backdoor-pretrained"),
    "model-tampering": ("aml-model-poisoning-direct", "aml-shipped-model-tampering"),
    "generative": ("aml-llm-direct-prompt-injection", "aml-llm-jailbreak",
                   "aml-llm-indirect-prompt-injection", "aml-rag-poisoning",
                   "aml-llm-system-prompt-extraction", "aml-llm-data-leakage",
                   "aml-llm-output-rendering-exfiltration", "aml-agent-tool-misuse",
                   "aml-agent-memory-poisoning", "aml-llm-prompt-self-replication",
                   "aml-llm-hallucinated-entities", "aml-agent-config-tampering",
                   "aml-agent-tool-poisoning"),
}
CLASS_OF = {t: c for c, ts in CLASSES.items() for t in ts}


def aml_classes(root: Path, draft: Draft, catalog: Catalog) -> tuple[set[str], set[str]]:
    """The adversarial-ML classes of the drafted spec's findings, and its threat ids."""
    spec = root / "mlthreat-draft.yaml"
    spec.write_text(to_yaml(draft, root, root.name))
    pipeline = load_pipeline(spec, catalog)
    assessment = Assessor(catalog, scan=False).assess(pipeline)
    ids = {f.threat_id for f in assessment.findings if f.family.value == "aml"}
    return {CLASS_OF[t] for t in ids}, ids


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def extract(snapshots: Path, repo: str, commit: str, into: Path) -> str | None:
    """The repository's files at `commit` written under `into` (blobs the snapshot lacks, such as
    files over 4 MiB, are skipped); None if there is no snapshot or no such commit."""
    folder = snapshots / repo.replace("/", "+")
    git = next((g for g in (folder / "repo" / ".git", folder / "repo", folder / ".git")
                if (g / "HEAD").is_file()), folder / "repo")
    if not git.is_dir():
        return "no snapshot"
    listing = subprocess.run(["git", f"--git-dir={git}", "ls-tree", "-r", "-z", commit],
                             capture_output=True)
    if listing.returncode:
        return f"commit {commit[:10]} not in the snapshot"
    cat = subprocess.Popen(["git", f"--git-dir={git}", "cat-file", "--batch"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert cat.stdin and cat.stdout
    for entry in filter(None, listing.stdout.split(b"\0")):
        meta, path = entry.split(b"\t", 1)
        mode, kind, sha = meta.split()
        if kind != b"blob" or mode == b"120000":
            continue
        cat.stdin.write(sha + b"\n")
        cat.stdin.flush()
        header = cat.stdout.readline().split()
        if header[-1] == b"missing":
            continue
        data = cat.stdout.read(int(header[2]))
        cat.stdout.read(1)
        out = into / path.decode(errors="replace")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    cat.stdin.close()
    cat.wait()
    # what a user's clone has and a snapshot lacks: the remote it was cloned from
    (into / ".git").mkdir(exist_ok=True)
    (into / ".git" / "config").write_text(
        f'[remote "origin"]\n\turl = https://github.com/{repo}.git\n')
    return None


@dataclass
class Verdict:
    rule: str
    file: str
    line: int | None
    verdict: str
    why: str

    def matches(self, rule: str, file: str, line: int | None) -> bool:
        return self.rule == rule and (fnmatch.fnmatchcase(file, self.file) if self.line is None
                                      else (self.file, self.line) == (file, line))


def judged(repo: str) -> tuple[list[Verdict], list[Verdict]]:
    path = HERE / "judged" / f"{repo.replace('/', '+')}.yaml"
    if not path.exists():
        return [], []
    data = yaml.safe_load(path.read_text()) or {}

    def read(items: list[dict[str, object]] | None, default: str) -> list[Verdict]:
        return [Verdict(str(i["rule"]), str(i["file"]),
                        int(i["line"]) if i.get("line") is not None else None,  # type: ignore[call-overload]
                        str(i.get("verdict", default)), str(i.get("why", "")))
                for i in items or []]
    # a judgment of one place comes before a judgment of many (a glob without a line)
    found = sorted(read(data.get("findings"), "TP"), key=lambda v: v.line is None)
    return found, read(data.get("missed"), "FN")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sets = sorted({str(r.get("set")) for r in yaml.safe_load(
        (HERE / "corpus.yaml").read_text())["repos"]})
    ap.add_argument("--set", default="all", choices=(*sets, "all"),
                    help="the corpus's sets, read from corpus.yaml (default: all)")
    ap.add_argument("--snapshots", type=Path,
                    default=Path(os.environ.get("MLTHREAT_SNAPSHOTS", HERE / "snapshots")),
                    help="folder of OWNER+NAME/repo git directories or OWNER+NAME clones "
                         "(default: $MLTHREAT_SNAPSHOTS, else benchmarks/realrepos/snapshots)")
    ap.add_argument("--only", action="append", help="owner/name (repeatable)")
    ap.add_argument("--discover-only", action="store_true", help="skip the scanners")
    ap.add_argument("--show-discover", action="store_true",
                    help="print each drafted component and flow")
    ap.add_argument("--list-unjudged", action="store_true",
                    help="print every finding no judgment covers")
    args = ap.parse_args(argv)
    corpus = yaml.safe_load((HERE / "corpus.yaml").read_text())["repos"]
    wanted = [r for r in corpus if (args.set == "all" or r["set"] == args.set)
              and (not args.only or r["repo"] in args.only)]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    kinds_expected = kinds_found = 0
    catalog = load_catalog()
    unclassed = sorted(t.id for t in catalog.threats
                       if t.family.value == "aml" and t.id not in CLASS_OF)
    if unclassed:
        raise SystemExit(f"CLASSES in {__file__} lacks {', '.join(unclassed)}")
    aml_expected = aml_found = aml_hits = 0
    skipped = []
    for entry in wanted:
        repo = entry["repo"]
        with tempfile.TemporaryDirectory(prefix="realrepo-") as tmp:
            root = Path(tmp) / repo.split("/")[1]
            root.mkdir()
            why = extract(args.snapshots, repo, entry["commit"], root)
            if why:
                skipped.append(f"{repo}: {why}")
                continue
            t0 = time.perf_counter()
            report = scan_paths([root]) if not args.discover_only else scan_paths([], [])
            verdicts, missed = judged(repo)
            for f in report.findings:
                v = next((v for v in verdicts if v.matches(f.rule, f.file, f.line)), None)
                counts[f.scanner][v.verdict if v else "unjudged"] += 1
                if v is None and args.list_unjudged:
                    print(f"  unjudged {repo} {f.where} {f.rule} {f.severity}: {f.message[:90]}")
            for m in (missed if not args.discover_only else []):
                hit = any(f.rule == m.rule and f.file == m.file and
                          (m.line is None or f.line == m.line) for f in report.findings)
                scanner = {"SEC": "secrets", "SRV": "serving", "DEP": "dependencies",
                           "CI": "workflows", "MF": "modelfile"}[m.rule.split("-")[0]]
                counts[scanner]["FN" if not hit else "missed-but-found"] += 1
            draft = discover(root)
            expected = Counter(entry.get("components", []))
            found = Counter(c["kind"] for c in draft.components.values())
            if args.show_discover:
                for c in draft.components.values():
                    print(f"    {c['id']:18s} {c['kind']:16s} {c['notes'][:110]}")
                for a, b, d in draft.flows:
                    print(f"    flow {a} -> {b}: {d[:90]}")
            kinds_expected += sum(expected.values())
            kinds_found += sum((expected & found).values())
            print(f"{repo:45s} {report.files:5d} files {len(report.findings):4d} findings "
                  f"{time.perf_counter() - t0:6.1f} s; discover {sum((expected & found).values())}"
                  f"/{sum(expected.values())} components")
            missing = expected - found
            if missing:
                print(f"    discover missed: {', '.join(sorted(missing))}")
            if "aml" in entry:
                want = set(entry["aml"])
                try:
                    got, ids = aml_classes(root, draft, catalog)
                except MlthreatError as e:
                    print(f"    drafted spec not usable: {e}")
                    got, ids = set(), set()
                aml_expected += len(want)
                aml_found += len(got)
                aml_hits += len(want & got)
                print(f"    adversarial-ML classes {len(want & got)}/{len(want)} expected, "
                      f"{len(got - want)} more"
                      + (f"; missed: {', '.join(sorted(want - got))}" if want - got else "")
                      + (f"; more: {', '.join(sorted(got - want))} ("
                         + ", ".join(sorted(t for t in ids if CLASS_OF[t] in got - want)) + ")"
                         if got - want else ""))
    print(f"\nset: {args.set}; {len(wanted) - len(skipped)} repositories")
    print(f"{'scanner':13s} {'TP':>5s} {'FP':>5s} {'unjudged':>9s} {'precision':>10s} "
          f"{'95% interval':>15s} {'recall':>8s}")
    for scanner in sorted(counts):
        c = counts[scanner]
        n = c["TP"] + c["FP"]
        lo, hi = wilson(c["TP"], n)
        prec = f"{c['TP'] / n:.3f}" if n else "-"
        recall = f"{c['TP'] / (c['TP'] + c['FN']):.3f}" if c["FN"] else "-"
        print(f"{scanner:13s} {c['TP']:5d} {c['FP']:5d} {c['unjudged']:9d} {prec:>10s} "
              f"   [{lo:.3f}, {hi:.3f}] {recall:>8s}")
    if kinds_expected:
        lo, hi = wilson(kinds_found, kinds_expected)
        print(f"discover component recall: {kinds_found}/{kinds_expected} = "
              f"{kinds_found / kinds_expected:.3f} [{lo:.3f}, {hi:.3f}]")
    if aml_expected or aml_found:
        lo, hi = wilson(aml_hits, aml_expected)
        plo, phi = wilson(aml_hits, aml_found)
        print(f"adversarial-ML classes of the drafted specs: recall {aml_hits}/{aml_expected} = "
              f"{aml_hits / max(aml_expected, 1):.3f} [{lo:.3f}, {hi:.3f}], precision "
              f"{aml_hits}/{aml_found} = {aml_hits / max(aml_found, 1):.3f} [{plo:.3f}, {phi:.3f}]")
    for s in skipped:
        print(f"skipped {s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
