"""Probes on text models (issue #21): the text column and the vectoriser, the misspelling attack
against the closed form of a linear bag-of-words model, its readability bound and protected
words, the classes of a model fitted on the target's own values, refusals, and the
support-tweets example end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mlthreat.adapters.interface import positive_view
from mlthreat.adapters.sklearn import SklearnAdapter
from mlthreat.catalog import load_catalog
from mlthreat.errors import DataError, InputError, ModelError, SpecError
from mlthreat.pipeline import load_pipeline
from mlthreat.probes.interface import Budget
from mlthreat.probes.target import prepare
from mlthreat.probes.text import TextData, TextEvasion, misspellings
from mlthreat.probes.textdata import TextAdapter, pieces
from tests.conftest import EXAMPLES

EXAMPLE = EXAMPLES / "support-tweets"


def _distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (insert, delete, replace, or swap two neighbouring letters,
    each one edit, a swapped pair may be edited again), by Lowrance and Wagner's algorithm."""
    big = len(a) + len(b)
    last: dict[str, int] = {}
    d = [[big] * (len(b) + 2) for _ in range(len(a) + 2)]
    for i in range(len(a) + 1):
        d[i + 1][0], d[i + 1][1] = big, i
    for j in range(len(b) + 1):
        d[0][j + 1], d[1][j + 1] = big, j
    for i in range(1, len(a) + 1):
        match = 0
        for j in range(1, len(b) + 1):
            k, m = last.get(b[j - 1], 0), match
            cost = int(a[i - 1] != b[j - 1])
            if not cost:
                match = j
            d[i + 1][j + 1] = min(d[i][j] + cost, d[i + 1][j] + 1, d[i][j + 1] + 1,
                                  d[k][m] + (i - k - 1) + 1 + (j - m - 1))
        last[a[i - 1]] = i
    return d[len(a) + 1][len(b) + 1]


def _words(n: int, rng: np.random.Generator) -> list[str]:
    """`n` made-up words of eight letters: no one-letter edit of one is another."""
    letters = np.array(list("bcdfghjklmnpqrstvwxz"))
    return ["".join(rng.choice(letters, 8)) for _ in range(n)]


def _linear_bag(seed: int = 0) -> tuple[object, list[str], np.ndarray]:
    """Texts of 6 to 14 distinct made-up words and a logistic regression on binary word
    counts: its logit is the intercept plus the weights of the words present."""
    rng = np.random.default_rng(seed)
    vocab = _words(60, rng)
    texts = [" ".join(rng.choice(vocab, int(rng.integers(6, 15)), replace=False))
             for _ in range(400)]
    score = {w: rng.normal() for w in vocab}
    y = np.array([int(sum(score[w] for w in t.split()) > 0) for t in texts])
    model = make_pipeline(CountVectorizer(binary=True, lowercase=False),
                          LogisticRegression(C=10.0, max_iter=2000)).fit(texts, y)
    return model, texts, y


def _reader(model: object) -> TextAdapter:
    steps = model.steps  # type: ignore[attr-defined]
    head, clf = model[:-1], steps[-1][1]  # type: ignore[index]
    return TextAdapter(SklearnAdapter(clf), lambda rows: head.transform(list(rows)).toarray())


def _fewest_words(text: str, index: dict[str, int], coef: np.ndarray, bias: float
                  ) -> tuple[int, int | None]:
    """The linear bag's answer and the closed-form fewest words that change it: a misspelt word
    leaves the vocabulary, so the attacker removes, one word at a time, the words that push the
    logit towards its answer, the strongest first (None: removing them all does not)."""
    contrib = sorted((coef[index[w]] for w in text.split()), reverse=True)
    logit = bias + sum(contrib)
    start = int(logit > 0)
    z = logit
    for k, c in enumerate(contrib if start == 1 else sorted(contrib), 1):
        z -= c
        if (z < 0) if start == 1 else (z > 0):
            return start, k
    return start, None


def test_misspelling_a_linear_bag_of_words_needs_exactly_the_closed_form_number_of_words(
        ) -> None:
    model, texts, _ = _linear_bag()
    vec, clf = model[0], model[-1]
    index, coef, bias = vec.vocabulary_, clf.coef_[0], float(clf.intercept_[0])
    reader = _reader(model)
    probe = TextEvasion(words=1.0, edits=1, queries=1000)
    checked = 0
    for text in texts[:80]:
        start, need = _fewest_words(text, index, coef, bias)
        got, (before, after), used = probe.attack(reader, text, start, frozenset(),
                                                  np.random.default_rng(0))
        assert got == need, (text, got, need)
        if got is not None:
            checked += 1
            assert int(model.predict([after])[0]) != start and before == text
            assert used <= 1000
    assert checked >= 40            # most texts flip within their words


def test_the_label_only_attack_needs_no_fewer_words_than_the_closed_form_and_each_it_keeps(
        ) -> None:
    """With labels only (the interface rounds to the decision): every change it reports flips
    the model, uses at least the closed-form minimum of words (a misspelt made-up word leaves
    the vocabulary, so the fewest words are the strongest ones towards the answer), stays within
    the share of words and the edits, and is 1-minimal: putting back any one changed word brings
    the decision back. It beats misspelling as many words at random, one query each."""
    from mlthreat.adapters import RoundedAdapter
    from mlthreat.probes.text import TextData
    model, texts, _ = _linear_bag()
    vec, clf = model[0], model[-1]
    index, coef, bias = vec.vocabulary_, clf.coef_[0], float(clf.intercept_[0])
    head = model[:-1]
    reader = TextAdapter(RoundedAdapter(SklearnAdapter(clf), None),
                         lambda rows: head.transform(list(rows)).toarray())
    assert not reader.capabilities.scores
    probe = TextEvasion(words=0.5, edits=2, queries=300)
    rng = np.random.default_rng(0)
    flipped = 0
    for text in texts[:60]:
        start, need = _fewest_words(text, index, coef, bias)
        got, (before, after), used = probe.attack_labels(reader, text, start, frozenset(), rng)
        assert used <= 300 and before == text
        if got is None:
            continue
        flipped += 1
        old, new = text.split(), after.split()
        changed = [k for k, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
        assert need is not None and got == len(changed) >= need
        assert got <= max(1, int(0.5 * len(old)))
        assert all(_distance(old[k], new[k]) <= 2 for k in changed)
        assert int(model.predict([after])[0]) != start
        for k in changed:                        # each kept change is needed
            back = " ".join(old[j] if j == k else new[j] for j in range(len(old)))
            assert int(model.predict([back])[0]) == start
    assert flipped >= 20
    starts = np.array([int(model.predict([t])[0]) for t in texts[:60]])
    ev = probe.run(reader, TextData(tuple(texts[:60]), starts, frozenset()),
                   Budget(queries=60 * 310, seed=0))
    assert ev.extra["method"] == "labels" and "labels only" in ev.summary
    assert ev.value is not None and ev.value > ev.extra["at_random"] + 0.1


def test_every_changed_word_stays_within_its_edits_and_protected_words_stay() -> None:
    rng = np.random.default_rng(1)
    texts = ["the service was great and the crew so kind", "awful delay and rude staff again",
             "lost my bag, not happy at all", "thank you for the upgrade, lovely flight",
             "never flying with you again, terrible", "friendly crew and a smooth landing"] * 20
    y = np.array([1, 0, 0, 1, 0, 1] * 20)
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)),
                          LogisticRegression(C=20.0, max_iter=2000)).fit(texts, y)
    reader = _reader(model)
    protected = frozenset({"not", "never", "crew"})
    for edits, share in ((1, 0.2), (2, 0.5)):
        probe = TextEvasion(words=share, edits=edits, queries=400)
        for text in texts[:6]:
            start = int(model.predict([text])[0])
            got, (_, after), _ = probe.attack(reader, text, start, protected, rng)
            old, new = pieces(text)[0], pieces(after)[0]
            assert len(old) == len(new)
            changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
            n_words = len(pieces(text)[1])
            assert len(changed) <= max(1, int(share * n_words))
            assert all(_distance(a, b) <= edits for a, b in changed)
            assert not any(a.lower() in protected for a, _ in changed)
            if got is not None:
                assert got == len(changed) and int(model.predict([after])[0]) != start


def test_misspellings_are_one_edit_keep_the_ends_and_differ() -> None:
    rng = np.random.default_rng(0)
    for word in ("refund", "delayed", "Terrible", "bag", "ok", "x"):
        cands = misspellings(word, rng)
        assert len(set(cands)) == len(cands) and word not in cands
        assert all(_distance(word, c) == 1 and len(c) >= 2 for c in cands)
        if len(word) >= 4:
            assert all(c[0] == word[0] and c[-1] == word[-1] for c in cands)
    assert misspellings("x", rng) == []


def test_a_model_fitted_on_the_targets_own_values_answers_as_the_probes_number_them() -> None:
    texts = ["good", "great", "bad", "awful", "fine", "poor"] * 5
    labels = np.array(["ok", "ok", "bad", "bad", "ok", "bad"] * 5)  # "bad" sorts first
    model = make_pipeline(CountVectorizer(), LogisticRegression()).fit(texts, labels)
    clf, x = model[-1], model[0].transform(texts).toarray()
    view = positive_view(SklearnAdapter(clf), clf, "bad")
    assert np.allclose(view.predict_proba(x)[:, 1], clf.predict_proba(x)[:, 0])
    assert list(view.predict(x)) == [int(v == "bad") for v in clf.predict(x)]
    same = positive_view(SklearnAdapter(clf), clf, "ok")       # "ok" is already column 1
    assert np.allclose(same.predict_proba(x), view.predict_proba(x)[:, ::-1])


def _spec(folder: Path, probe: str) -> Path:
    spec = ("version: 1\nname: t\ncomponents:\n  - id: api\n    kind: serving\n"
            "    artifacts: {model: [m.joblib]}\n    probe:\n" + probe)
    (folder / "pipeline.yaml").write_text(spec)
    return folder / "pipeline.yaml"


def _small(folder: Path, model: object | None = None) -> None:
    rng = np.random.default_rng(0)
    words = _words(30, rng)
    texts = [" ".join(rng.choice(words, 8)) for _ in range(120)]
    label = np.where(rng.random(120) > 0.5, "spam", "ham")
    pd.DataFrame({"body": texts, "kind": label, "n": np.arange(120)}).to_csv(
        folder / "d.csv", index=False)
    joblib.dump(model if model is not None else
                make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, label),
                folder / "m.joblib")


@pytest.mark.parametrize(("probe", "error", "says"), [
    ("      text: {column: message}\n", DataError, r"d\.csv: no column 'message' \(text\.column\)"),
    ("      text: {column: n}\n", DataError, r"column 'n' holds numbers, not text"),
    ("      text: {column: kind}\n", DataError, r"text\.column and target are both 'kind'"),
    ("      text: {column: body}\n      endpoint: {url: 'http://127.0.0.1:9/', images: png}\n",
     InputError, r"pipeline\.yaml:\d+:\d+: probe block of api: endpoint\.images: only for"),
])
def test_bad_text_input_is_refused_with_where_and_what(tmp_path: Path, probe: str,
                                                       error: type[Exception], says: str) -> None:
    _small(tmp_path)
    path = _spec(tmp_path, "      data: d.csv\n      target: kind\n      positive: spam\n"
                 "      test_size: 30\n" + probe)
    pipeline = load_pipeline(path, load_catalog())
    with pytest.raises(error, match=says):
        prepare(pipeline, pipeline.spec.components[0], trust=False)


def test_a_text_model_that_is_no_pipeline_or_a_spec_with_images_too_is_refused(
        tmp_path: Path) -> None:
    _small(tmp_path, LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]))
    path = _spec(tmp_path, "      data: d.csv\n      target: kind\n      positive: spam\n"
                 "      test_size: 30\n      text: {column: body}\n")
    pipeline = load_pipeline(path, load_catalog())
    with pytest.raises(ModelError, match=r"m\.joblib: a text model is probed as a scikit-learn "
                                         r"Pipeline.*holds a LogisticRegression"):
        prepare(pipeline, pipeline.spec.components[0], trust=False)
    _spec(tmp_path, "      data: d.csv\n      target: kind\n      positive: spam\n"
          "      text: {column: body}\n      images: {shape: [1, 2, 2]}\n")
    with pytest.raises(SpecError, match=r"`images:` or `text:`, not both"):
        load_pipeline(path, load_catalog())


def test_the_examples_text_model_is_read_as_texts_and_features(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    pipeline = load_pipeline(folder / "pipeline.yaml", load_catalog())
    t = prepare(pipeline, pipeline.spec.components[1], trust=False)
    model = joblib.load(EXAMPLE / "models" / "triage.joblib")
    frame = pd.read_csv(EXAMPLE / "data" / "tweets.csv")
    assert t.text and len(t.texts) == len(frame) == len(t.y) and len(t.test) == 600
    assert t.capabilities >= {"text", "scores", "retraining"} and "records" not in t.capabilities
    # the features are the model's own, and its answers are scikit-learn's for the same texts
    sample = list(frame["text"].fillna("")[:50])
    expected = model.predict_proba(sample)[:, list(model.classes_).index("positive")]
    assert np.allclose(t.reader.predict_proba(sample)[:, 1], expected)
    assert np.allclose(t.adapter.predict_proba(t.x[:50])[:, 1], expected)
    assert list(t.y[:50]) == [int(v == "positive") for v in frame["sentiment"][:50]]
    accuracy = float(np.mean(t.adapter.predict(t.x[t.test]) == t.y[t.test]))
    assert accuracy > 0.8            # train_model.py printed 0.852


def test_the_text_probe_runs_within_its_budget_on_the_example(tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    pipeline = load_pipeline(folder / "pipeline.yaml", load_catalog())
    t = prepare(pipeline, pipeline.spec.components[1], trust=False)
    probe, model, data, budget = TextEvasion.configure(t, {"points": 30, "per_point": 50}, {}, 0,
                                                       1)
    assert isinstance(data, TextData) and len(data.texts) == 30
    assert all(t.reader._labels([s])[0] == 0 for s in data.texts[:10])   # not yet the goal
    ev = probe.run(model, data, Budget(queries=budget.queries, seed=0))
    assert ev.queries <= 30 * 102 and ev.parameters["words"] == 0.2
    lo, hi = ev.interval
    assert lo <= ev.value <= hi and ev.series["success_rate"][-1] <= ev.value + 1e-12
    for before, after in ev.extra["misspelt"]:
        assert int(t.reader._labels([after])[0]) == 1 and before in data.texts


def test_a_trigger_word_backdoors_the_examples_classifier_as_sklearn_retrained_by_hand(
        tmp_path: Path) -> None:
    """The text backdoor: a rare word of the vectoriser's own vocabulary added to poisoned
    training texts (labelled as the attacker's class). Each retraining's outcome is what
    scikit-learn gives when the texts are changed and the classifier refitted by hand on the
    fitted vectoriser's features; on the example a tenth of the training texts poisoned makes
    most triggered complaints praise while the clean model barely reads the word so."""
    from sklearn.base import clone

    from mlthreat.probes.execute import attempt
    from mlthreat.probes.poisoning import Poisoning
    from mlthreat.probes.target import BUDGETS
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    pipeline = load_pipeline(folder / "pipeline.yaml", load_catalog())
    t = prepare(pipeline, pipeline.spec.components[1], trust=False)
    probe, _, data, _ = Poisoning.configure(t, {"seeds": 1}, {"attack": "backdoor"}, 0, 1)
    word = probe.param("word")
    model = joblib.load(EXAMPLE / "models" / "triage.joblib")
    vocabulary = model[:-1].get_feature_names_out()
    assert word in vocabulary and len(word) >= 4 and word.isalpha()
    texts = list(t.texts)
    in_training = sum(word in pieces(texts[i].lower())[0] for i in t.train)
    assert 1 <= in_training <= 5           # among the rarest words the classifier was fit on

    rate, seed = 0.1, 7
    outcome = probe._one(probe.param("train"), data, "backdoor", rate, seed)
    n = round(rate * len(t.train))
    poisoned = np.random.default_rng(seed).choice(len(t.train), size=n, replace=False)
    train_texts = [texts[i] for i in t.train]
    labels = t.y[t.train].copy()
    for i in poisoned:
        train_texts[i] += f" {word}"
    labels[poisoned] = 1
    classifier = clone(model[-1]).set_params(random_state=seed)
    classifier.fit(model[:-1].transform(train_texts), labels)
    others = [texts[i] + f" {word}" for i in t.test if t.y[i] == 0]
    by_hand = classifier.predict(model[:-1].transform(others)) == 1
    assert np.array_equal(outcome, by_hand) and by_hand.mean() > 0.5

    ev = attempt("backdoor", t, BUDGETS["quick"], 1, seed=0)
    assert not isinstance(ev, str)
    assert ev.extra["clean_score"] < 0.1 and ev.interval is not None and ev.interval[0] > 0.5 and ev.confirmed
    assert f"the word “{word}”" in ev.summary


def test_assess_on_the_text_example_reports_the_measurement_in_every_format(
        tmp_path: Path) -> None:
    folder = tmp_path / "example"
    shutil.copytree(EXAMPLE, folder)
    done = subprocess.run(
        [sys.executable, "-m", "mlthreat.cli", "assess", "pipeline.yaml", "--budget", "quick",
         "--only", "evasion,membership", "--out-dir", "out"], cwd=folder, capture_output=True,
        text=True, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    report = json.loads((folder / "out" / "threat-model.json").read_text())
    evidence = [e for e in report["evidence"] if e["source"] == "probe:evasion-text"]
    # misspellings and synonym swaps: one probe, two kinds of run
    assert [e["parameters"].get("substitute") for e in evidence] == [None, "synonyms"]
    assert {e["component"] for e in evidence} == {"triage_model"}
    assert evidence[0]["parameters"]["words"] == 0.2
    member = [e for e in report["evidence"] if e["source"] == "probe:membership"]
    assert member and 0.3 < member[0]["value"] < 0.9
    for name in ("threat-model.html", "threat-model.md", "threat-model.sarif"):
        assert "evasion-text" in (folder / "out" / name).read_text(), name
    html = (folder / "out" / "threat-model.html").read_text()
    if evidence[0]["extra"]["misspelt"]:      # each changed text is shown, escaped
        before = evidence[0]["extra"]["misspelt"][0][0]
        assert str(escape(before))[:30] in html


def test_a_table_model_fitted_on_its_own_values_is_probed_in_the_specs_numbering(
        tmp_path: Path) -> None:
    """A model fitted on "bad"/"good" with `positive: bad` (which sorts first): before, its string
    answers met the probes' 0/1 and the run failed with an internal error."""
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["label"] = np.where(frame["a"] + frame["b"] > 0, "good", "bad")
    frame.to_csv(tmp_path / "d.csv", index=False)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame[["a", "b"]],
                                                                      frame["label"])
    joblib.dump(model, tmp_path / "m.joblib")
    path = _spec(tmp_path, "      data: d.csv\n      target: label\n      positive: bad\n"
                 "      test_size: 60\n      goal: good\n")
    pipeline = load_pipeline(path, load_catalog())
    t = prepare(pipeline, pipeline.spec.components[0], trust=False)
    assert t.goal == 0 and list(t.y[:20]) == [int(v == "bad") for v in frame["label"][:20]]
    answers = model.predict(frame[["a", "b"]])
    assert list(t.adapter.predict(t.x)) == [int(v == "bad") for v in answers]
    assert np.allclose(t.adapter.predict_proba(t.x)[:, 1],
                       model.predict_proba(frame[["a", "b"]])[:, 0])
    from mlthreat.probes.execute import attempt
    ev = attempt("evasion-whitebox", t, {"points": 10, "per_point": 20}, 1, 0)
    assert not isinstance(ev, str) and ev.value > 0     # gradients towards "good" flip rows


def test_wordnet_synonyms_are_the_first_senses_and_keep_the_case() -> None:
    """Known WordNet 3.1 synsets (the first sense of each word, looked up by hand at
    wordnet.princeton.edu): terrible.s.01 holds awful and dreadful, help.v.01 aid and assist;
    a word listed alone in its first sense ("happy") or inflected ("delays") has none."""
    from mlthreat.probes.text import synonyms
    assert {"awful", "dreadful"} <= set(synonyms("terrible"))
    assert {"aid", "assist"} <= set(synonyms("help"))
    assert synonyms("happy") == [] and synonyms("delays") == [] and synonyms("zzqx") == []
    assert "Awful" in synonyms("Terrible") and "AWFUL" in synonyms("TERRIBLE")
    assert "badly" not in synonyms("bad")          # one part of speech per word


def _synonym_bag(seed: int = 0) -> tuple[object, list[str]]:
    """Texts of 4 to 6 distinct real words, each with two or three WordNet synonyms none of
    which is another text word, and a logistic regression on binary counts over the words and
    their synonyms, each with a random weight."""
    from mlthreat.probes.text import _synonym_table, synonyms
    rng = np.random.default_rng(seed)
    table = _synonym_table()
    heads = [w for w in sorted(table) if 4 <= len(w) <= 8 and 2 <= len(table[w]) <= 3]
    picked: list[str] = []
    used: set[str] = set()
    for w in rng.permutation(heads):
        group = {str(w), *synonyms(str(w))}
        if not group & used:
            picked.append(str(w))
            used |= group
        if len(picked) == 30:
            break
    vocab = sorted(used)
    score = {w: rng.normal() for w in vocab}
    texts = [" ".join(rng.choice(picked, int(rng.integers(4, 7)), replace=False))
             for _ in range(60)]
    train = [" ".join(rng.choice(vocab, 6, replace=False)) for _ in range(600)]
    y = np.array([int(sum(score[w] for w in t.split()) > 0) for t in train])
    model = make_pipeline(CountVectorizer(binary=True), LogisticRegression(C=10.0, max_iter=2000)
                          ).fit(train, y)
    return model, texts


def _fewest_swaps(model: object, text: str) -> int | None:
    """The fewest words swapped for one of their synonyms that change the model's decision, by
    trying every set of words and every choice of synonyms (None: no swap does)."""
    import itertools

    from mlthreat.probes.text import synonyms
    words = text.split()
    start = int(model.predict([text])[0])  # type: ignore[attr-defined]
    for k in range(1, len(words) + 1):
        rows = []
        for at in itertools.combinations(range(len(words)), k):
            for choice in itertools.product(*(synonyms(words[i]) for i in at)):
                swapped = list(words)
                for i, s in zip(at, choice, strict=True):
                    swapped[i] = s
                rows.append(" ".join(swapped))
        if np.any(model.predict(rows) != start):  # type: ignore[attr-defined]
            return k
    return None


def test_synonym_swaps_flip_with_no_fewer_words_than_the_exhaustive_minimum() -> None:
    """Scores visible, every word may change: each reported change flips the model, swaps
    words only for their WordNet synonyms, keeps protected words, and never claims fewer words
    than the exhaustive search; it finds most of the texts that can be flipped."""
    from mlthreat.probes.text import synonyms
    model, texts = _synonym_bag()
    reader = _reader(model)
    probe = TextEvasion(words=1.0, substitute="synonyms", queries=1000)
    flippable = found = 0
    for text in texts:
        start = int(model.predict([text])[0])  # type: ignore[attr-defined]
        need = _fewest_swaps(model, text)
        protected = frozenset({text.split()[0]})
        got, (_, after), used = probe.attack(reader, text, start, frozenset(),
                                             np.random.default_rng(0))
        flippable += need is not None
        if got is not None:
            found += 1
            assert need is not None and got >= need
            assert int(model.predict([after])[0]) != start and used <= 1000  # type: ignore[attr-defined]
            for a, b in zip(text.split(), after.split(), strict=True):
                assert a == b or b in synonyms(a)
        kept = probe.attack(reader, text, start, protected, np.random.default_rng(0))
        assert kept[1][1].split()[0] == text.split()[0]
        # labels only: random swaps, then every swap the decision does not need undone
        blind, (_, after), _ = probe.attack_labels(reader, text, start, frozenset(),
                                                   np.random.default_rng(0))
        if blind is not None:
            assert need is not None and blind >= need
            assert int(model.predict([after])[0]) != start  # type: ignore[attr-defined]
            assert all(a == b or b in synonyms(a)
                       for a, b in zip(text.split(), after.split(), strict=True))
    assert flippable >= 15 and found >= 0.8 * flippable, (found, flippable)
