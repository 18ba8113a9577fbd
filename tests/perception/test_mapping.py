"""The free-text mapper's parts, each on a case that its absence gets wrong."""

from __future__ import annotations

import pytest

from mlthreat.catalog import Catalog
from mlthreat.perception import Mappers, mapping
from mlthreat.perception.mapping import Mapper, _concepts, content


@pytest.fixture(scope="module")
def mappers(catalog: Catalog) -> Mappers:
    return Mappers.for_catalog(catalog)


def test_an_entry_that_covers_the_rare_words_beats_one_that_only_matches_the_common_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Every entry but "a" mentions training data; only "a" mentions a ratio. The best-phrase
    # similarity alone prefers "b", whose one phrase is exactly the query's common part.
    phrases = {"a": ["the ratio of groups in a data set"],
               "b": ["training data"],
               "c": ["training data stolen", "breach"],
               "d": ["training data poisoned", "poisoning"]}
    query = "the gender ratio in our training data"
    assert Mapper(phrases, {}).map(query).target == "a"
    monkeypatch.setattr(mapping, "COVERAGE", 0.0)
    assert Mapper(phrases, {}).map(query).target == "b"


def test_inflected_german_and_english_words_meet_their_dictionary_form(mappers: Mappers) -> None:
    # "klonten" (past tense of klonen) and "gestohlen" (of stehlen): the lexicon lists the
    # infinitives; without lemmas the first stays unmapped
    assert mappers.threats.map("Konkurrenten klonten unser Modell").target == \
        "aml-model-extraction"
    assert "concept_steal" in content("Kundendaten gestohlen")
    assert "concept_copy" in content("they cloned it")


def test_a_german_compound_is_read_by_its_last_part(mappers: Mappers) -> None:
    # "Festplattenverschlüsselung" is disk encryption, not transport encryption (TLS)
    assert mappers.threats._word("festplattenverschlüsselung") == "festplatten verschlüsselung"
    assert mappers.controls.map("Festplattenverschlüsselung").target == "encryption_at_rest"


def test_a_typo_fix_keeps_the_first_letter(mappers: Mappers) -> None:
    assert mappers.threats._spelled("modle steeling") == "model stealing"
    assert mappers.threats._word("kunde") != "under"      # 0.8 alike, but a different word


def test_generic_words_carry_no_concept_into_what_a_phrase_names(mappers: Mappers) -> None:
    # "people" is a word of human review, but "we trust our people" names no defense
    assert content("we trust our people") == {"trust"}
    assert mappers.controls.map("we trust our people").target is None
    assert mappers.controls.map("analysts double-check the flagged cases").target == "human_review"


def test_a_word_as_written_outranks_another_group_that_has_it_only_as_a_stem() -> None:
    index, _ = _concepts()
    assert index["https"] == ("concept_transit",)
    assert index["http"] == ("concept_plaintext",)
    # a word that two groups list as written carries both
    assert {"concept_bucket", "concept_database"} <= set(index["speicher"])
