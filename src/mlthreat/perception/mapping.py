"""Free text to catalog entries: a practitioner's "people copying our model" to
`aml-model-extraction`, "passwords" to `authentication`.

TF-IDF over character n-grams (scikit-learn) and over lemmas (simplemma, English and German) of
each entry's name, keywords, aliases and description, with a concept lexicon that gives synonyms
one token; the nearest entry by cosine similarity wins if it is similar enough. Every mapping is
reported with its score, so a reader can see and correct it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import simplemma
import yaml
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from mlthreat.catalog import Catalog
from mlthreat.catalog.loader import in_words

MIN_SIMILARITY = 0.3
CONFIRM = 0.5             # the interview confirms a mapping of free text below this similarity
COVERAGE = 0.4            # weight of the query words an entry's phrases cover (the rest: best phrase)
CHAR_ALONE = 0.6          # a match sharing no content word must be this close in characters
_WORD = re.compile(r"[a-z0-9äöüß]+")
_SUFFIXES = ("ing", "ies", "es", "ed", "s")
# German function words (the catalog's keywords and the study's participants use both languages)
_GERMAN_STOP = {"der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "eines", "und",
                "oder", "in", "im", "mit", "von", "vom", "zu", "zur", "zum", "über", "ob", "auf",
                "für", "aus", "bei", "nach", "vor", "durch", "unser", "unsere", "unseren",
                "unserem", "wir", "ist", "sind", "wird", "werden", "nicht", "kein", "keine",
                "jemand", "man", "es", "sich", "als", "wie", "so", "auch", "noch", "nur", "alle",
                "alles", "halt", "eben", "mal"}
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
           "sicherheitsmaßnahmen", "maßnahmen", "ahnung", "daten", "modell", "handle", "safety",
           "angreifen", "wrong", "falsch", "team", "teams", "platform", "plattform"}


@cache
def _lemma(word: str) -> str:
    """The dictionary form of a lower-case English or German word ("stole" -> "steal",
    "datensätze" -> "datensatz", "gestohlen" -> "stehlen"); the word itself when unknown."""
    if len(word) < 4:             # "ai", "ml", "ci": abbreviations the dictionaries misread
        return word
    lemma = simplemma.lemmatize(word, lang=("en", "de")).lower()
    if lemma == word and word[:1].isalpha():       # German nouns are known capitalised
        lemma = simplemma.lemmatize(word.capitalize(), lang=("de",)).lower()
    return lemma


def _stem(word: str) -> str:
    """Light suffix stripping after the lemma, for words the dictionary does not know."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            return word + "y" if suffix == "ies" else word
    return word


@cache
def _concepts() -> tuple[dict[str, tuple[str, ...]], tuple[tuple[str, str], ...]]:
    """word -> its concept tokens, and (long word, concept) pairs for parts of German compounds.

    A word listed in a group is that group's as written; its lemma and stem are the group's only
    where no group lists them as written ("https" is transport security, "http" is plain text).
    """
    text = resources.files("mlthreat.perception").joinpath("data/concepts.yaml").read_text(
        encoding="utf-8")
    groups = {concept: [str(w).lower() for w in words]
              for concept, words in yaml.safe_load(text).items()}
    index: dict[str, tuple[str, ...]] = {}
    for forms in (lambda w: (w,), lambda w: (_lemma(w), _stem(_lemma(w)))):
        found: dict[str, list[str]] = {}
        for concept, words in groups.items():
            for word in words:
                for form in forms(word):
                    if form not in index and f"concept_{concept}" not in found.get(form, []):
                        found.setdefault(form, []).append(f"concept_{concept}")
        index.update({form: tuple(c) for form, c in found.items()})
    parts = tuple((w, c[0]) for w, c in index.items() if len(w) >= 6)
    return index, parts


def _stems(text: str, generic: bool = True) -> list[str]:
    """The stems of `text`'s content words and the concept tokens they carry; without the
    generic words ("people", "data") and their concepts when `generic` is false."""
    pairs = [(w, _lemma(w)) for w in _WORD.findall(text.lower())
             if w not in ENGLISH_STOP_WORDS and w not in _GERMAN_STOP]
    pairs = [(w, lemma) for w, lemma in pairs
             if lemma not in ENGLISH_STOP_WORDS and lemma not in _GERMAN_STOP]
    if not generic:
        pairs = [(w, lemma) for w, lemma in pairs
                 if w not in _generic() and _stem(lemma) not in _generic()]
    out = [_stem(lemma) for _, lemma in pairs]
    index, parts = _concepts()
    for w, lemma in pairs:
        concepts = index.get(w) or index.get(lemma) or index.get(_stem(lemma)) or ()
        if not concepts and len(w) >= 10:      # Modelldiebstahl: "diebstahl"
            concepts = tuple(c for part, c in parts if part in w)[:1]
        out.extend(concepts)
    return out


@cache
def _generic() -> frozenset[str]:
    return frozenset(GENERIC | {_stem(_lemma(w)) for w in GENERIC})


def content(text: str) -> set[str]:
    """The words of `text` that can name something (and their concepts): no function words, no
    generic ones ("people" names no defense, even though it is a word of human review)."""
    return set(_stems(text, generic=False))


@dataclass(frozen=True, slots=True)
class Mapping:
    text: str
    target: str | None      # catalog id, or None when nothing is close enough
    score: float            # cosine similarity, 1.0 for an exact id or alias
    how: str                # "id" | "alias" | "text" | "unmapped" | "vague"
    best: str | None = None  # the closest entry even when unmapped (to ask back about)

    @property
    def settled(self) -> bool:
        """Mapped by id or alias, or by text at least CONFIRM similar: nothing to confirm."""
        return self.target is not None and (self.how != "text" or self.score >= CONFIRM)


class Mapper:
    """Nearest catalog entry for a free-text phrase, for one kind of entry.

    Each entry is represented by several phrases (name, keywords, aliases) and its description.
    Two similarities are mixed: that of its best phrase (so a long description does not drown a
    short keyword that says exactly what the practitioner said), and how much of what the query
    says the entry's phrases cover, each word weighted by how few entries use it (so "training
    data", which half the entries mention, does not outvote "ratio", which one does).
    """

    def __init__(self, phrases: dict[str, list[str]], exact: dict[str, str],
                 descriptions: dict[str, str] | None = None) -> None:
        self.ids = list(phrases)
        self.exact = exact
        bags = [set().union(*(_stems(t) for t in phrases[key])) for key in self.ids]
        self.vocabulary_of = {t: i for i, t in enumerate(sorted(set().union(*bags)))}
        self.bags = np.zeros((len(self.ids), len(self.vocabulary_of)))
        for i, bag in enumerate(bags):
            self.bags[i, [self.vocabulary_of[t] for t in bag]] = 1
        df = self.bags.sum(axis=0)
        self.idf = np.log((len(self.ids) + 1) / (df + 0.5))
        self.unseen_idf = float(np.log((len(self.ids) + 1) / 0.5))
        phrases = {key: [*phrases[key], *([descriptions[key]] if descriptions else [])]
                   for key in self.ids}
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
        return " ".join(self._word(w) for w in _WORD.findall(text.lower()))

    def _word(self, word: str) -> str:
        if word in self.known or len(word) < 4 or _lemma(word) in self.known:
            return word
        close = [w for w in difflib.get_close_matches(word, self.vocabulary, n=3, cutoff=0.8)
                 if w[0] == word[0]]         # a typo seldom hits the first letter
        if close:
            return str(close[0])
        # a German compound names what its last part names ("Kundendaten": data,
        # "Festplattenverschlüsselung": encryption): the longest known word it ends with
        heads = [word[i:] for i in range(3, len(word) - 3)
                 if word[i:] in self.known or word[i:] in _concepts()[0]]
        return f"{word[:len(word) - len(heads[0])]} {heads[0]}" if heads else word

    def _coverage(self, text: str) -> np.ndarray:
        """Per entry, the share of the query's words (weighted by rarity) its phrases use."""
        said = set(_stems(text))
        known = [self.vocabulary_of[t] for t in said if t in self.vocabulary_of]
        total = self.idf[known].sum() + self.unseen_idf * (len(said) - len(known))
        if total <= 0:
            return np.zeros(len(self.ids))
        return np.asarray(self.bags[:, known] @ self.idf[known] / total)

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
        scores = (1 - COVERAGE) * scores + COVERAGE * self._coverage(key)
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
    phrases = {t.id: [t.name, *t.keywords] for t in catalog.threats}
    return Mapper(phrases, {t.id: t.id for t in catalog.threats},
                  {t.id: in_words(t.description) for t in catalog.threats})


def control_mapper(catalog: Catalog) -> Mapper:
    phrases = {c.id: [c.name, *(a.replace("_", " ") for a in (c.id, *c.aliases)), *c.keywords]
               for c in catalog.controls}
    exact = {name: c.id for c in catalog.controls for name in (c.id, *c.aliases)}
    return Mapper(phrases, exact, {c.id: c.description for c in catalog.controls})
