"""Free text to catalog entries: a practitioner's "people copying our model" to
`aml-model-extraction`, "passwords" to `authentication`.

TF-IDF over character n-grams (scikit-learn) of each entry's name, keywords, aliases and
description; the nearest entry by cosine similarity wins if it is similar enough. Every mapping
is reported with its score, so a reader can see and correct it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from mlthreat.catalog import Catalog

MIN_SIMILARITY = 0.35
_WORD = re.compile(r"[a-z0-9]+")
_SUFFIXES = ("ing", "ies", "es", "ed", "s")


def _stem(word: str) -> str:
    """Light suffix stripping, enough for "copying"/"copy" and "steals"/"stealing"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            return word + "y" if suffix == "ies" else word
    return word


def _stems(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS]


@dataclass(frozen=True, slots=True)
class Mapping:
    text: str
    target: str | None      # catalog id, or None when nothing is close enough
    score: float            # cosine similarity, 1.0 for an exact id or alias
    how: str                # "id" | "alias" | "text" | "unmapped"


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

    def map(self, text: str) -> Mapping:
        key = text.strip()
        if key in self.exact:
            target = self.exact[key]
            return Mapping(text, target, 1.0, "id" if target == key else "alias")
        rows = ((self.char_matrix @ self.chars.transform([key]).T).toarray().ravel()
                + (self.word_matrix @ self.words.transform([key]).T).toarray().ravel()) / 2
        scores = np.zeros(len(self.ids))
        np.maximum.at(scores, self.owner, rows)
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < MIN_SIMILARITY:
            return Mapping(text, None, round(score, 3), "unmapped")
        return Mapping(text, self.ids[best], round(score, 3), "text")


def threat_mapper(catalog: Catalog) -> Mapper:
    phrases = {t.id: [t.name, *t.keywords, t.description] for t in catalog.threats}
    return Mapper(phrases, {t.id: t.id for t in catalog.threats})


def control_mapper(catalog: Catalog) -> Mapper:
    phrases = {c.id: [c.name, *(a.replace("_", " ") for a in (c.id, *c.aliases)), *c.keywords,
                      c.description] for c in catalog.controls}
    exact = {name: c.id for c in catalog.controls for name in (c.id, *c.aliases)}
    return Mapper(phrases, exact)
