"""How well free text maps to the catalog: tests/perception/phrases.yaml, measured.

For each split (tune: phrases used to improve the mapper; holdout: written before the second round
of tuning, read for its misses on 2026-12-05 and tuned on since; holdout4: written on 2026-12-05
before the third round, only ever measured) and each kind (threats, controls):
- top-1 accuracy on phrases that name one catalog entry (or a class whose members all fit), with a
  95 % Wilson interval;
- how often a wrong entry is chosen where the phrase should stay unmapped, and how often a
  phrase that names an entry is left unmapped (then the interview asks back);
- how often a threat phrase lands in the other family (adversarial ML vs classical security);
- how many mappings the interview confirms rather than takes (similarity below the mapper's
  CONFIRM), and how many of the wrong mappings are among them.

Goals (issue #18): top-1 >= 90 %, wrong family <= 3 %, vague phrases unmapped.
Run: `.venv/bin/python benchmarks/mapping.py [--show tune|holdout] [--without coverage|lemmas]`.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PHRASES = HERE.parent / "tests" / "perception" / "phrases.yaml"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def measure(kind: str, rows: list[list[str]], show: bool) -> dict[str, float]:
    from mlthreat import load_catalog
    from mlthreat.perception import Mappers
    catalog = load_catalog()
    mappers = Mappers.for_catalog(catalog)
    mapper = mappers.threats if kind == "threats" else mappers.controls
    family = {t.id: t.family for t in catalog.threats}
    named = right = unmapped_named = vague = vague_mapped = cross = 0
    mapped = wrong = asked = asked_wrong = 0     # what the interview confirms (Mapping.settled)
    misses = []
    for text, expected, _ in rows:
        got = mapper.map(text)
        if got.target is not None:
            bad = got.target not in expected.split("|")
            mapped, wrong = mapped + 1, wrong + bad
            if not got.settled:
                asked, asked_wrong = asked + 1, asked_wrong + bad
        if expected == "-":
            vague += 1
            if got.target is not None:
                vague_mapped += 1
                misses.append(f"  {text!r}: expected unmapped, got {got.target} ({got.score})")
            continue
        ok = expected.split("|")
        named += 1
        if got.target in ok:
            right += 1
            continue
        if got.target is None:
            unmapped_named += 1
        elif kind == "threats" and family[got.target] != family[ok[0]]:
            cross += 1
        misses.append(f"  {text!r}: expected {expected}, got {got.target} ({got.score})")
    lo, hi = wilson(right, named)
    print(f"  {kind}: top-1 {right}/{named} = {right / max(named, 1):.1%} (95% CI {lo:.1%}-"
          f"{hi:.1%}); left unmapped (asks back) {unmapped_named}; vague phrases mapped anyway "
          f"{vague_mapped}/{vague}" + (f"; other family {cross}/{named} = {cross / max(named, 1):.1%}"
                                         if kind == "threats" else ""))
    print(f"    the interview confirms {asked} of {mapped} mappings (weak ones), "
          f"{asked_wrong} of the {wrong} wrong")
    if show:
        print("\n".join(misses))
    return {"top1": right / max(named, 1), "cross": cross / max(named, 1)}


def plot4ai(deck_file: Path, show: bool) -> None:
    """Each labelled card's question and, separately, its title, mapped as threats."""
    import json
    try:
        deck = json.loads(deck_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"{deck_file}: not PLOT4AI's deck.json ({e}); clone "
              "https://github.com/PLOT4ai/plot4ai-library and give its deck.json", file=sys.stderr)
        sys.exit(2)
    labels = yaml.safe_load((HERE / "plot4ai_labels.yaml").read_text(encoding="utf-8"))["cards"]
    cards = {card["label"]: card for category in deck for card in category["cards"]}
    missing = sorted(set(labels) - set(cards))
    if missing:
        print(f"{deck_file}: no card {', '.join(missing)}; the labels are for the deck at commit "
              "5f4b43e (another version of the deck?)", file=sys.stderr)
        sys.exit(2)
    for field in ("question", "label"):
        print(f"plot4ai, each card's {field} ({len(labels)} cards):")
        rows = [[cards[name][field], expected, "plot4ai"] for name, expected in labels.items()]
        measure("threats", rows, show=show)


def atlas_names(atlas_file: Path, show: bool) -> None:
    """MITRE ATLAS's technique names (wording nobody here wrote), each labelled with the catalog
    threats whose references cite it, parent techniques and sub-techniques alike; a technique
    no threat cites is labelled unmapped (reconnaissance, resource development and the like)."""
    from mlthreat import load_catalog
    try:
        atlas = yaml.safe_load(atlas_file.read_text(encoding="utf-8"))
        techniques = atlas["matrices"][0]["techniques"]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as e:
        print(f"{atlas_file}: not MITRE ATLAS's ATLAS.yaml ({e})", file=sys.stderr)
        sys.exit(2)
    cited: dict[str, set[str]] = {}
    for threat in load_catalog().threats:
        for ref in threat.references.atlas:
            cited.setdefault(ref, set()).add(threat.id)
    rows = [[t["name"], "|".join(sorted(cited[t["id"]])) if t["id"] in cited else "-", "atlas"]
            for t in techniques]
    print(f"MITRE ATLAS technique names ({len(rows)}, {sum(r[1] != '-' for r in rows)} cited "
          "by a catalog threat):")
    measure("threats", rows, show=show)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", choices=["tune", "holdout", "plot4ai", "atlas"],
                        help="list the misses of a split that is tuned on (holdout has been, "
                             "since 2026-12-05; holdout4 is only ever measured), or of the "
                             "PLOT4AI cards (read once on 2026-12-05, never tuned on)")
    parser.add_argument("--split", action="append",
                        help="measure only this split (repeatable; default every split)")
    parser.add_argument("--plot4ai", type=Path, metavar="DECK",
                        help="also map the threat cards of PLOT4AI (deck.json of "
                             "github.com/PLOT4ai/plot4ai-library) labelled in "
                             "benchmarks/plot4ai_labels.yaml: wording nobody here wrote")
    parser.add_argument("--atlas", type=Path, metavar="ATLAS_YAML",
                        help="also map MITRE ATLAS technique names, each labelled with the "
                             "catalog threats that cite it (none: it should stay unmapped)")
    parser.add_argument("--without", choices=["coverage", "lemmas"],
                        help="measure the mapper with one of its parts switched off: the "
                             "word-coverage weighting, or the lemmas (words kept as written)")
    args = parser.parse_args()
    if args.without:
        from mlthreat.perception import mapping
        if args.without == "coverage":
            mapping.COVERAGE = 0.0
        else:
            mapping._lemma = lambda word: word   # type: ignore[assignment]
    if args.atlas:
        atlas_names(args.atlas, show=args.show == "atlas")
        return
    if args.plot4ai:
        plot4ai(args.plot4ai, show=args.show == "plot4ai")
        return
    data = yaml.safe_load(PHRASES.read_text(encoding="utf-8"))
    splits = dict.fromkeys(r[2] for kind in ("threats", "controls") for r in data[kind])
    for split in args.split or splits:
        print(f"{split}:")
        for kind in ("threats", "controls"):
            rows = [r for r in data[kind] if r[2] == split]
            measure(kind, rows, show=args.show == split)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
