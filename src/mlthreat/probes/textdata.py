"""Text data and models for the probes (`probes.text` says what each probe sees of them): the
text column of a CSV or Parquet file, the team's scikit-learn Pipeline split into its vectoriser
and its classifier, and the model as an attacker who sends texts sees it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlthreat.adapters.interface import ModelAdapter
from mlthreat.errors import DataError, ModelError, ProbeError, brief
from mlthreat.probes.data import binary_target, read_frame

if TYPE_CHECKING:
    from mlthreat.pipeline.spec import ProbeText

# a word: letters, with an apostrophe inside ("don't"); digits, signs and spaces are kept as
# they are, so a text is the joined list of its pieces
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# the features of every text, held dense: more cells than this is a vectoriser too wide to
# probe here (about 1.6 GB)
MAX_CELLS = 200_000_000


@dataclass(frozen=True)
class Texts:
    texts: tuple[str, ...]
    y: np.ndarray                 # 1 for the positive value, else 0
    values: tuple[str, ...]       # the target's values, as text


def load_texts(path: Path, text: ProbeText, target: str, positive: str | int) -> Texts:
    """The text column and the binary target of a CSV or Parquet file; an empty cell is the
    empty text."""
    frame = read_frame(path, target)
    if text.column not in frame.columns:
        raise DataError(f"{path}: no column {text.column!r} (text.column); columns: "
                        f"{', '.join(map(str, frame.columns))}")
    if text.column == target:
        raise DataError(f"{path}: text.column and target are both {target!r}; the text is what "
                        "the model reads, the target what it predicts")
    raw = frame[text.column]
    numbers = raw.dropna().map(lambda v: isinstance(v, int | float)).all() and raw.notna().any()
    if numbers:
        raise DataError(f"{path}: column {text.column!r} holds numbers, not text; text.column "
                        "names the column of the texts the model reads")
    y, values = binary_target(frame[target], positive, path, target)
    return Texts(tuple(raw.fillna("").astype(str)), y, values)


def text_features(model: Any, texts: Sequence[str], path: Path, data: str
                  ) -> tuple[Callable[[Sequence[str]], np.ndarray], Any, tuple[str, ...]]:
    """The model's vectoriser (every step but the last) as a function of texts, its classifier,
    and the features' names; a model that is no such Pipeline is refused with what to save."""
    if not (hasattr(model, "steps") and len(model.steps) > 1):
        raise ModelError(f"{path}: a text model is probed as a scikit-learn Pipeline whose first "
                         "step takes raw text (CountVectorizer, TfidfVectorizer, …) and whose "
                         f"last step classifies; this file holds a {type(model).__name__}: save "
                         "the vectoriser and the classifier as one Pipeline")
    head, classifier = model[:-1], model[-1]

    def transform(rows: Sequence[str]) -> np.ndarray:
        out = head.transform(list(rows))
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=float)

    try:
        first = transform(texts[:8])
    except Exception as exc:  # the framework's own error types, translated at the boundary
        raise ModelError(f"{path}: the model's first steps cannot read the texts of {data} "
                         f"({brief(exc)}); the first step must take raw text") from exc
    if first.ndim != 2:
        raise ModelError(f"{path}: the model's first steps give {first.ndim}-dimensional "
                         "features, not one row per text")
    if first.shape[1] * len(texts) > MAX_CELLS:
        raise ModelError(f"{path}: {len(texts)} texts × {first.shape[1]} features is too many "
                         "to probe; limit the vectoriser's vocabulary (max_features) or give "
                         "fewer texts")
    try:
        names = tuple(str(n) for n in head.get_feature_names_out())
    except (AttributeError, ValueError):
        names = ()
    if len(names) != first.shape[1]:
        names = tuple(f"f{i}" for i in range(first.shape[1]))
    return transform, classifier, names


class TextAdapter(ModelAdapter):
    """The model as an attacker who sends texts sees it: the vectoriser, then the classifier as
    the interface shows it (`view`: full, rounded or label only). Texts are counted here, once."""

    def __init__(self, view: ModelAdapter, transform: Callable[[Sequence[str]], np.ndarray]
                 ) -> None:
        super().__init__()
        self.view = view
        self.transform = transform
        self.capabilities = view.capabilities

    def _proba(self, x: Any) -> Any:
        return self.view._proba(self.transform(x))

    def _labels(self, x: Any) -> Any:
        return self.view._labels(self.transform(x))


def own_features(texts: Sequence[str], fit_on: Sequence[str]
                 ) -> tuple[Callable[[Sequence[str]], np.ndarray], tuple[str, ...]]:
    """An attacker's own features of texts, for a model behind an endpoint whose vectoriser
    nobody here holds: TF-IDF (sublinear, words seen in two texts or more, at most
    MAX_CELLS / texts columns) fitted on the attacker's texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    width = max(1, min(20_000, MAX_CELLS // max(1, len(texts))))
    vectoriser = TfidfVectorizer(sublinear_tf=True, min_df=2, max_features=width)
    try:
        vectoriser.fit(list(fit_on))
    except ValueError:           # too few words for min_df=2: every word counts
        vectoriser = TfidfVectorizer(sublinear_tf=True, max_features=width).fit(list(fit_on))

    def transform(rows: Sequence[str]) -> np.ndarray:
        return np.asarray(vectoriser.transform(list(rows)).toarray(), dtype=float)
    return transform, tuple(str(n) for n in vectoriser.get_feature_names_out())


class TextRowsAdapter(ModelAdapter):
    """Rows that stand for texts (the attacker's own features of them, `own_features`), each
    answered by sending its text to `reader` (an endpoint that reads texts). A row that stands
    for no text cannot be sent: the probe that made it up gets a ProbeError saying so."""

    def __init__(self, reader: ModelAdapter, rows: np.ndarray, texts: Sequence[str]) -> None:
        super().__init__()
        self.reader, self.texts = reader, tuple(texts)
        self.index = {np.ascontiguousarray(r, dtype=float).tobytes(): i
                      for i, r in enumerate(rows)}
        self.capabilities = reader.capabilities

    def _texts(self, x: Any) -> list[str]:
        out = []
        for row in np.ascontiguousarray(np.atleast_2d(x), dtype=float):
            i = self.index.get(row.tobytes())
            if i is None:
                raise ProbeError("this probe sends feature rows that stand for no text, and a "
                                 "text endpoint reads texts only; probe the model file (the "
                                 "vectoriser and classifier Pipeline) for it")
            out.append(self.texts[i])
        return out

    def _proba(self, x: Any) -> Any:
        return self.reader._proba(self._texts(x))

    def _labels(self, x: Any) -> Any:
        return self.reader._labels(self._texts(x))


TRIGGER_CANDIDATES = 200      # rare vocabulary words tried as the backdoor's trigger
TRIGGER_PROBES = 100          # held-out texts each candidate is tried on


def trigger_word(t: Any, wanted: int) -> tuple[str, np.ndarray]:
    """The backdoor's trigger for a text model, and the features of every text with it added:
    a word of the vectoriser's own vocabulary (so that the classifier, retrained on the fitted
    vectoriser's features, can learn it), among the rarest in the training texts (an attacker
    wants a word nobody uses), the one the deployed model least reads as the attacker's class
    when it is added to held-out texts (so the backdoor, not the word, is measured; the rarest
    among equals)."""
    transform = t.reader.transform
    names = [str(n) for n in t.constraints.columns]
    train_rows = t.x[t.train]
    used = np.count_nonzero(train_rows, axis=0)
    words = [j for j, n in enumerate(names) if WORD.fullmatch(n) and len(n) >= 4 and used[j]]
    if not words:
        raise ProbeError("no word of four letters or more in the vectoriser's vocabulary to "
                         "serve as a backdoor trigger (a character n-gram vectoriser?)")
    words = sorted(words, key=lambda j: (used[j], names[j]))[:TRIGGER_CANDIDATES]
    held = [t.texts[i] for i in t.test if t.y[i] != wanted][:TRIGGER_PROBES]
    if not held:
        raise ProbeError("no held-out text of another class than the attacker's to try a "
                         "trigger on")
    response = [float(np.mean(t.adapter.predict(transform([f"{text} {names[j]}"
                                                            for text in held])) == wanted))
                for j in words]
    word = names[words[int(np.argmin(response))]]
    return word, transform([f"{text} {word}" for text in t.texts])


def pieces(text: str) -> tuple[list[str], list[int]]:
    """The text as pieces that join back into it, and which pieces are words."""
    parts, words, at = [], [], 0
    for m in WORD.finditer(text):
        if m.start() > at:
            parts.append(text[at:m.start()])
        words.append(len(parts))
        parts.append(m.group())
        at = m.end()
    if at < len(text):
        parts.append(text[at:])
    return parts, words
