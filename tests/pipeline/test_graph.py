"""Derived facts and shortest paths on small hand-drawn pipelines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlthreat.catalog import Catalog
from mlthreat.pipeline import load_pipeline
from mlthreat.pipeline.graph import build_graph
from mlthreat.vocabulary import Fact

SPEC = """\
name: facts
components:
  - {id: web, kind: client, exposure: public}
  - {id: api, kind: serving, artifacts: {model: m.joblib}}
  - {id: fb, kind: feedback, exposure: public}
  - {id: db, kind: data_store, personal_data: true}
  - {id: train, kind: training}
  - {id: hub, kind: pretrained_model, exposure: public}
  - {id: island, kind: data_store}
  - {id: vault, kind: model_registry, artifacts: {model: x.bin, model_format: safetensors}}
flows:
  - {from: web, to: api}
  - {from: api, to: web}
  - {from: web, to: fb}
  - {from: fb, to: db}
  - {from: db, to: train}
  - {from: hub, to: train}
  - {from: train, to: api}
  - {from: train, to: vault}
"""


def test_facts(write_spec: Callable[[str], Path], catalog: Catalog) -> None:
    pg = build_graph(load_pipeline(write_spec(SPEC), catalog))
    f = pg.facts
    assert Fact.exposed in f["web"] and Fact.exposed not in f["api"]
    assert Fact.untrusted_input in f["api"] and Fact.untrusted_input in f["train"]
    assert Fact.untrusted_input not in f["island"]
    assert Fact.feeds_training in f["fb"] and Fact.feeds_training in f["api"]  # via the loop
    assert Fact.feeds_training not in f["vault"] and Fact.feeds_training not in f["island"]
    # The cycle web -> fb -> db -> train -> api -> web passes through training.
    assert {n for n in f if Fact.feedback_loop in f[n]} == {"web", "fb", "db", "train", "api"}
    assert Fact.personal_data_upstream in f["api"] and Fact.personal_data_upstream in f["fb"]
    for outside in ("hub", "island"):
        assert Fact.personal_data_upstream not in f[outside]
        assert Fact.downstream_of_pretrained not in f[outside]
    assert Fact.downstream_of_pretrained in f["api"]
    assert Fact.pickle_model_artifact in f["api"]            # .joblib
    assert Fact.pickle_model_artifact not in f["vault"]      # declared safetensors wins over .bin
    assert Fact.has_code in f["train"] and Fact.has_code not in f["db"]


def test_path_from_nearest_entry_prefers_data_entries(write_spec: Callable[[str], Path],
                                                     catalog: Catalog) -> None:
    pg = build_graph(load_pipeline(write_spec(SPEC), catalog))
    assert pg.path_from_entry("db") == ["fb", "db"]
    assert pg.path_from_entry("api") == ["web", "api"]
    assert pg.path_from_entry("island") == ["island"]
