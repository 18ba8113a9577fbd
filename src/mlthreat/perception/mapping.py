"""Free text to catalog entries: a practitioner's "people copying our model" to
`aml-model-extraction`, "passwords" to `authentication`.

TF-IDF over character n-grams (scikit-learn) of each entry's name, keywords, aliases and
description; the nearest entry by cosine similarity wins if it is similar enough. Every mapping
is reported with its score, so a reader can see and correct it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import yaml
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from mlthreat.catalog import Catalog
from mlthreat.catalog.loader import in_words

MIN_SIMILARITY = 0.35
CHAR_ALONE = 0.6          # a match sharing no content word must be this close in characters
_WORD = re.compile(r"[a-z0-9äöüß]+")
_SUFFIXES = ("ing", "ies", "es", "ed", "s")
# German function words (the catalog's keywords and the study's participants use both languages)
_GERMAN_STOP = {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "eines", "und",
                "oder", "in", "im", "mit", "von", "vom", "zu", "zur", "zum", "über", "ob", "auf",
                "für", "aus", "bei", "nach", "vor", "durch", "unser", "unsere", "unseren",
                "unserem", "wir", "ist", "sind", "wird", "werden", "nicht", "kein", "keine",
                "jemand", "man", "es", "sich", "als", "wie", "so", "auch", "noch", "nur"}
# Words that say "security" or "something" without naming any catalog entry: a phrase made only
# of them is vague, and the interview asks back instead of guessing
GENERIC = {"attack", "attacks", "attacker", "attackers", "security", "secure", "risk", "risks",
           "threat", "threats", "stuff", "thing", "things", "something", "bad", "problem",
           "problems", "issue", "issues", "cloud", "data", "model", "models", "system", "systems",
           "general", "usual", "ai", "ml", "it", "hacker", "hackers", "hack", "misuse", "people",
           "someone", "google", "aws", "azure", "infrastructure", "compliance", "measure",
           "measures", "best", "practice", "practices", "standard", "careful", "provider",
           "know", "really", "nothing", "don", "sicherheit", "angriff", "angriffe", "angreifer",
           "risiko", "risiken", "probleme", "sachen", "allgemein", "infrastruktur",
           "sicherheitsmaßnahmen", "maßnahmen", "ahnung", "daten", "modell", "handle"}


def _stem(word: str) -> str:
    """Light suffix stripping, enough for "copying"/"copy" and "steals"/"stealing"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            return word + "y" if suffix == "ies" else word
    return word


@cache
def _concepts() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """word -> concept token, and (long word, concept) pairs for parts of German compounds."""
    text = resources.files("mlthreat.perception").joinpath("data/concepts.yaml").read_text(
        encoding="utf-8")
    index: dict[str, str] = {}
    for concept, words in yaml.safe_load(text).items():
        for word in words:
            index.setdefault(str(word).lower(), f"concept_{concept}")
            index.setdefault(_stem(str(word).lower()), f"concept_{concept}")
    parts = tuple((w, c) for w, c in index.items() if len(w) >= 6)
    return index, parts


def _stems(text: str) -> list[str]:
    words = [w for w in _WORD.findall(text.lower())
             if w not in ENGLISH_STOP_WORDS and w not in _GERMAN_STOP]
    out = [_stem(w) for w in words]
    index, parts = _concepts()
    for w in words:
        concept = index.get(w) or index.get(_stem(w))
        if concept is None and len(w) >= 10:      # Modelldiebstahl: "diebstahl"
            concept = next((c for part, c in parts if part in w), None)
        if concept is not None:
            out.append(concept)
    return out


def content(text: str) -> set[str]:
    """The words of `text` that can name something: no function words, no generic ones."""
    return {w for w in _stems(text) if w not in GENERIC and _stem(w) not in GENERIC}


@dataclass(frozen=True, slots=True)
class Mapping:
    text: str
    target: str | None      # catalog id, or None when nothing is close enough
    score: float            # cosine similarity, 1.0 for an exact id or alias
    how: str                # "id" | "alias" | "text" | "unmapped" | "vague"
    best: str | None = None  # the closest entry even when unmapped (to ask back about)


class Mapper:
    """Nearest catalog entry for a free-text phrase, for one kind of entry.

    Each entry is represented by several phrases (name, keywords, aliases, description); its
    similarity to a query is that of its best phrase, so long descriptions do not drown a short
    keyword that says exactly what the practitioner said.
    """

    def __init__(self, phrases: dict[str, list[str]], exact: dict[str, str]) -> None:
        self.ids = list(phrases)
        self.exact = exact
        rows = [(i, text) for i, key in enumerate(self.ids) for text in phrases[key]]
        self.owner = np.array([i for i, _ in rows])
        docs = [text for _, text in rows]
        # Characters catch spelling variants; stemmed words catch meaning carried by short
        # common words ("copy", "steal"). Rows are L2-normalised: the mean of the two cosines
        # is the similarity.
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        self.words = TfidfVectorizer(analyzer=_stems, sublinear_tf=True)
        self.char_matrix = self.chars.fit_transform(docs)
        self.word_matrix = self.words.fit_transform(docs)
        self.words_of = {key: set().union(*(content(t) for t in phrases[key]))
                         for key in self.ids}
        self.known = {w for text in docs for w in _WORD.findall(text.lower())}
        self.vocabulary = sorted(self.known)

    def _spelled(self, text: str) -> str:
        """`text` with each word the catalog does not know replaced by its closest known word,
        if one is close ("modle steeling" -> "model stealing")."""
        words = _WORD.findall(text.lower())
        fixed = [w if w in self.known or len(w) < 4 else
                 next(iter(difflib.get_close_matches(w, self.vocabulary, n=1, cutoff=0.8)), w)
                 for w in words]
        return " ".join(fixed)

    def map(self, text: str) -> Mapping:
        key = text.strip()
        if key in self.exact:
            target = self.exact[key]
            return Mapping(text, target, 1.0, "id" if target == key else "alias")
        key = self._spelled(key)
        chars = (self.char_matrix @ self.chars.transform([key]).T).toarray().ravel()
        rows = (chars + (self.word_matrix @ self.words.transform([key]).T).toarray().ravel()) / 2
        scores = np.zeros(len(self.ids))
        np.maximum.at(scores, self.owner, rows)
        best = int(np.argmax(scores))
        score = float(scores[best])
        said = content(key)
        if not said:      # "security", "attacks", "the usual risks": nothing to map
            return Mapping(text, None, round(score, 3), "vague", self.ids[best])
        if score < MIN_SIMILARITY:
            return Mapping(text, None, round(score, 3), "unmapped", self.ids[best])
        if not said & self.words_of[self.ids[best]]:
            # no word in common: only a near spelling of one of its phrases counts ("modle")
            near = float(chars[self.owner == best].max())
            if near < CHAR_ALONE:
                return Mapping(text, None, round(score, 3), "unmapped", self.ids[best])
        return Mapping(text, self.ids[best], round(score, 3), "text", self.ids[best])


def threat_mapper(catalog: Catalog) -> Mapper:
    phrases = {t.id: [t.name, *t.keywords, in_words(t.description)] for t in catalog.threats}
    return Mapper(phrases, {t.id: t.id for t in catalog.threats})


def control_mapper(catalog: Catalog) -> Mapper:
    phrases = {c.id: [c.name, *(a.replace("_", " ") for a in (c.id, *c.aliases)), *c.keywords,
                      c.description] for c in catalog.controls}
    exact = {name: c.id for c in catalog.controls for name in (c.id, *c.aliases)}
    return Mapper(phrases, exact)
