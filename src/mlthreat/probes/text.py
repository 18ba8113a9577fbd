"""Text models under attack: the data is a column of a CSV or Parquet file, the model a
scikit-learn Pipeline whose first steps turn text into features (a CountVectorizer or
TfidfVectorizer, words or character n-grams) and whose last step classifies them
(`probes.textdata`); here, the misspellings an attacker types to change the model's decision.

What each probe sees of a text model:
- membership inference, extraction and label-flip poisoning work on the features the team's own
  vectoriser gives (`Target.x`), as they do on a table's encoded columns; retraining refits the
  classifier on them with the vectoriser as fitted.
- the feature-space evasion probes do not run: no text gives an arbitrary feature vector.
- `evasion-text` changes the words themselves (`TextEvasion`): it sends texts, reads scores and
  keeps every change a reader still reads as the same word; where the interface returns labels
  only, it tries random misspellings of as many words as allowed, restarting within the query
  budget, and then undoes every change the decision does not need (`attack_labels`).
- `evasion-synonyms` is the same search with whole words swapped for WordNet synonyms instead
  of misspellings (as PWWS does, Ren et al. 2019): each word's most frequent sense in its most
  frequent part of speech (`synonyms`; the table is built by scripts/build_synonyms.py).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.errors import ProbeError
from mlthreat.probes.evasion import SUCCESS_RATE, few_points
from mlthreat.probes.interface import Budget, Measurement, Meter, Param, Prepared, Probe
from mlthreat.probes.stats import robustness, wilson
from mlthreat.probes.textdata import pieces
from mlthreat.results import Curve

if TYPE_CHECKING:
    from mlthreat.probes.target import Target

# neighbouring keys on a QWERTY keyboard: the letters a typing slip puts in
KEYS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def neighbours(letter: str) -> str:
    """The keys beside `letter` on a QWERTY keyboard (in its case); '' for other letters."""
    low = letter.lower()
    for row in KEYS:
        i = row.find(low)
        if i >= 0:
            near = row[max(0, i - 1):i] + row[i + 1:i + 2]
            return near.upper() if letter.isupper() else near
    return ""


def misspellings(word: str, rng: np.random.Generator) -> list[str]:
    """One letter edit of each kind a reader reads past (DeepWordBug's four, Gao et al. 2018):
    two neighbouring letters swapped, a letter dropped, a neighbouring key typed instead, a
    neighbouring key typed as well. Words of four letters or more keep their first and last
    letter. Each differs from `word` and keeps at least two letters."""
    n = len(word)
    if n < 2:
        return []
    lo, hi = (1, n - 1) if n >= 4 else (0, n)     # inner letters: positions lo .. hi-1
    found: list[str] = []

    def add(cand: str) -> None:
        if cand != word and len(cand) >= 2 and cand not in found:
            found.append(cand)

    if hi - lo >= 2:
        i = int(rng.integers(lo, hi - 1))
        add(word[:i] + word[i + 1] + word[i] + word[i + 2:])
    if n >= 3:
        i = int(rng.integers(lo, hi))
        add(word[:i] + word[i + 1:])
    i = int(rng.integers(lo, hi))
    near = neighbours(word[i])
    if near:
        add(word[:i] + near[int(rng.integers(len(near)))] + word[i + 1:])
        add(word[:i + 1] + near[int(rng.integers(len(near)))] + word[i + 1:])
    return found


@cache
def _synonym_table() -> dict[str, list[str]]:
    raw = resources.files("mlthreat.probes").joinpath("data/synonyms.json.gz").read_bytes()
    return dict(json.loads(gzip.decompress(raw)))


def synonyms(word: str) -> list[str]:
    """WordNet synonyms of `word` (its most frequent sense in its most frequent part of
    speech), in the word's case (Capitalised, UPPER or lower); [] for a word WordNet does not
    list or lists alone in that sense. Inflected forms are looked up as written: "delays" has
    none, "delay" has "detain" (a synonym of the base form would change the inflection)."""
    found = _synonym_table().get(word.lower(), [])
    if word.isupper() and len(word) > 1:
        return [w.upper() for w in found]
    if word[:1].isupper():
        return [w.capitalize() for w in found]
    return list(found)


@dataclass(frozen=True)
class TextData:
    texts: tuple[str, ...]             # held-out texts the model gets right, to attack
    start: np.ndarray                  # their class, as the model answers (0 or 1)
    protected: frozenset[str]          # lower-case words never changed
    asked: int | None = None


class TextEvasion(Probe):
    """Parameters: words (share of a text's words the attacker may change, 0.2), edits (letter
    edits per changed word, 1), queries (model calls per text, 200), substitute (misspellings
    or synonyms; a synonym is one swap per word, `edits` does not apply)."""

    name = "evasion-text"
    threat_ids = ("aml-evasion-blackbox",)
    parameters = {
        "words": Param(0.2, 1e-6, 1.0, doc="share of a text's words the attacker may change"),
        "edits": Param(1, 1, 3, doc="letter edits per changed word"),
        "queries": Param(200, 2, 1_000_000, doc="model calls per text"),
        "substitute": Param("misspellings", choices=("misspellings", "synonyms"),
                            doc="what replaces a word: a misspelling of it, or a synonym"),
    }
    requires = {"text": "changing words needs a model that reads text; tables and images "
                        "have the other evasion probes"}

    @classmethod
    def configure(cls, target: Target, settings: dict[str, int], fixed: dict[str, Any],
                  seed: int, jobs: int) -> Prepared:
        """Held-out texts the model answers correctly (and, with a goal, does not already give
        the goal), at most the budget's number of points."""
        t, spec = target, target.spec.text
        assert spec is not None and t.reader is not None
        test = [int(i) for i in t.test]
        texts = [t.texts[i] for i in test]
        answered = np.asarray(t.reader._labels(texts))
        keep = [k for k, i in enumerate(test) if answered[k] == t.y[i]
                and (t.goal is None or answered[k] != t.goal)]
        keep = keep[:settings["points"]]
        if not keep:
            raise ProbeError("no held-out text to attack: the model gets none right that is not "
                             "already the attacker's goal")
        data = TextData(tuple(texts[k] for k in keep), answered[keep],
                        frozenset(w.lower() for w in spec.protected), settings["points"])
        probe = cls(**{"words": spec.words, "edits": spec.edits,
                       "queries": settings["per_point"] * 2, **fixed})
        return Prepared(probe, t.reader, data,
                        Budget(queries=len(keep) * (probe.param("queries") + 2), seed=seed))

    def title(self) -> str:
        return "synonym swaps" if self._swaps() else self.name

    def curves(self, m: Measurement) -> tuple[Curve, ...]:
        eps, rate = m.series.get("epsilon"), m.series.get("success_rate")
        if not eps or not rate:
            return ()
        return (Curve(tuple(eps), tuple(rate), "words changed (at most)", "success rate",
                      tuple(m.series["success_low"]), tuple(m.series["success_high"]),
                      x_range=(0.0, max(eps))),)

    def _measure(self, model: ModelAdapter, data: TextData, rng: np.random.Generator,
                 meter: Meter) -> Measurement:
        scores = model.capabilities.scores
        attack = self.attack if scores else self.attack_labels
        results = [attack(model, text, int(c), data.protected, rng)
                   for text, c in zip(data.texts, data.start, strict=True)]
        chance = float(np.mean([self.at_random(model, text, int(c), data.protected, rng)
                                for text, c in zip(data.texts, data.start, strict=True)]))
        n = len(results)
        changed = np.array([r[0] if r[0] is not None else np.inf for r in results])
        flipped = np.isfinite(changed)
        rate = float(flipped.mean())
        most = int(max(1, changed[flipped].max())) if flipped.any() else 1
        steps = list(range(1, max(most, 3) + 1))
        curve = robustness([float(k) for k in steps],
                           [float((changed <= k).mean()) for k in steps], n)
        median = float(np.median(changed[flipped])) if flipped.any() else float("nan")
        queries = [r[2] for r in results if r[0] is not None]
        shown = min((r for r in results if r[0] is not None),
                    key=lambda r: (r[0], len(r[1][0])), default=None)
        example = (f"; e.g. “{_short(shown[1][0])}” with {_changes(*shown[1])}"
                   if shown is not None else "")
        low, high = wilson(rate, n)
        what = (f"≤{self.param('edits')} letter edit(s)" if not self._swaps()
                else "from WordNet,")
        summary = (f"{self.param('substitute')} ({what} in ≤"
                   f"{self.param('words'):.0%} of the words, "
                   f"{'scores' if scores else 'labels only'}, ≤{self.param('queries')} "
                   f"queries per text): {rate:.0%} of {n} texts change the decision"
                   + (f", median {median:g} word(s) changed" if flipped.any() else "")
                   + f" ({'misspelling' if not self._swaps() else 'swapping'} as many words "
                     f"at random: {chance:.0%})" + example)
        return Measurement(
            "success_rate", rate, (low, high), rate >= SUCCESS_RATE, summary, curve,
            {"norm": "words", "points": n, "median_words": median, "at_random": chance,
             "method": "scores" if scores else "labels",
             "median_queries": float(np.median(queries)) if queries else float("nan"),
             "misspelt": [list(r[1]) for r in results if r[0] is not None][:5],
             "warnings": few_points(n, data.asked)})

    def _editable(self, text: str, protected: frozenset[str]) -> tuple[list[str], list[int], int]:
        """The text's pieces, which of them the attacker may change (words of two letters or
        more that are not protected and, for synonym swaps, have a synonym), and how many words
        at most (`words` of them, at least 1)."""
        parts, words = pieces(text)
        editable = [i for i in words if parts[i].lower() not in protected and len(parts[i]) >= 2
                    and (not self._swaps() or synonyms(parts[i]))]
        return parts, editable, max(1, int(np.floor(float(self.param("words")) * len(words)
                                                     + 1e-9)))

    def _swaps(self) -> bool:
        return bool(self.param("substitute") == "synonyms")

    def _candidates(self, word: str, rng: np.random.Generator) -> list[str]:
        """What may replace `word`: its misspellings, or its synonyms."""
        return synonyms(word) if self._swaps() else misspellings(word, rng)

    def _edits(self) -> int:
        return 1 if self._swaps() else int(self.param("edits"))

    def attack(self, model: ModelAdapter, text: str, start: int, protected: frozenset[str],
               rng: np.random.Generator) -> tuple[int | None, tuple[str, str], int]:
        """(words changed when the decision changed, else None; (text, changed text); queries).
        Words are ranked by how much removing each lowers the model's margin for its answer,
        then changed in that order (misspelt, or swapped for a synonym), the candidate that
        lowers the margin most kept each time."""
        parts, editable, limit = self._editable(text, protected)
        budget, edits = int(self.param("queries")), self._edits()
        if not editable:
            return None, (text, text), 0
        used = len(editable)
        if used > budget:
            editable, used = editable[:budget], budget
        gone = [_join(parts, {i: ""}) for i in editable]
        drop = _margin(model, gone, start)
        order = [editable[k] for k in np.argsort(drop, kind="stable")]
        current: dict[int, str] = {}
        margin = float(_margin(model, [text], start)[0])
        used += 1
        for i in order:
            if len(current) >= limit:
                break
            for _ in range(edits):
                cands = [c for c in self._candidates(current.get(i, parts[i]), rng)
                         if c != parts[i]]      # a second edit may undo the first
                if not cands or used + len(cands) > budget:
                    break
                rows = [_join(parts, {**current, i: c}) for c in cands]
                got = _margin(model, rows, start)
                used += len(cands)
                best = int(np.argmin(got))
                if got[best] >= margin:
                    break
                current[i], margin = cands[best], float(got[best])
                if margin < 0:
                    return len(current), (text, _join(parts, current)), used
        return None, (text, _join(parts, current)), used


    def attack_labels(self, model: ModelAdapter, text: str, start: int,
                      protected: frozenset[str], rng: np.random.Generator
                      ) -> tuple[int | None, tuple[str, str], int]:
        """The decision-based attack, for an interface that returns labels only: as many words
        as allowed, chosen at random, each given `edits` random misspellings; one query; again
        with other words and edits until the decision changes or the budget is spent. Then each
        changed word, in random order, is put back if the decision stays changed without it (one
        query each; the first pass is kept back from the budget), pass after pass until none goes
        back, so that every word reported is one the change needs (while the budget lasts)."""
        parts, editable, limit = self._editable(text, protected)
        budget, edits = int(self.param("queries")), self._edits()
        if not editable:
            return None, (text, text), 0
        used, size = 0, min(limit, len(editable))
        while used + size <= budget:      # a try, and the queries its undoing may take
            chosen = rng.choice(editable, size=size, replace=False)
            changed = {int(i): w for i in chosen
                       if (w := _typed(parts[int(i)], edits, rng, self._candidates))}
            if not changed:
                break                           # no word here can be misspelt
            used += 1
            if int(model.predict([_join(parts, changed)])[0]) == start:
                continue
            first, smaller = True, True
            while smaller and len(changed) > 1 and (first or used < budget):
                # again after a word went back: a word's change can matter again once another
                # is undone (words pull both ways), so a pass that undoes nothing ends it
                first, smaller = False, False
                for i in [int(k) for k in rng.permutation(list(changed))]:
                    if len(changed) == 1 or used >= budget:
                        break
                    without = {k: v for k, v in changed.items() if k != i}
                    used += 1
                    if int(model.predict([_join(parts, without)])[0]) != start:
                        changed, smaller = without, True
            return len(changed), (text, _join(parts, changed)), used
        return None, (text, text), used

    def at_random(self, model: ModelAdapter, text: str, start: int, protected: frozenset[str],
                  rng: np.random.Generator) -> bool:
        """The baseline, one query: as many words as the attack may change, chosen at random
        and misspelt with one random edit each; does the decision change?"""
        parts, editable, limit = self._editable(text, protected)
        if not editable:
            return False
        chosen = rng.choice(editable, size=min(limit, len(editable)), replace=False)
        changed = {}
        for i in chosen:
            cands = self._candidates(parts[int(i)], rng)
            if cands:
                changed[int(i)] = cands[int(rng.integers(len(cands)))]
        return bool(int(model.predict([_join(parts, changed)])[0]) != start)


def _typed(word: str, edits: int, rng: np.random.Generator,
           candidates: Any = misspellings) -> str | None:
    """`word` after `edits` random replacements from `candidates(word, rng)` (misspellings by
    default) in a row (never back to itself), or None when it has none."""
    current = word
    for _ in range(edits):
        cands = [c for c in candidates(current, rng) if c != word]
        if not cands:
            break
        current = cands[int(rng.integers(len(cands)))]
    return current if current != word else None


def _join(parts: list[str], changed: dict[int, str]) -> str:
    return "".join(changed.get(i, p) for i, p in enumerate(parts))


def _margin(model: ModelAdapter, rows: list[str], start: int) -> np.ndarray:
    """Below zero once the decision changed: the log probability of the model's first answer
    minus the other class's."""
    logp = np.log(np.clip(model.predict_proba(rows), 1e-30, None))
    return np.asarray(logp[:, start] - logp[:, 1 - start], dtype=float)


def _changes(before: str, after: str) -> str:
    """The words an attack changed, as “old” → “new”."""
    old, new = pieces(before)[0], pieces(after)[0]
    pairs = [f"“{a}” → “{b}”" for a, b in zip(old, new, strict=False) if a != b]
    return ", ".join(pairs) if pairs else "no change"


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
