"""The interview, driven by scripted answers: picks, free text, defenses, resuming, and files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlthreat.analysis import Assessment
from mlthreat.catalog import Catalog
from mlthreat.errors import InputError
from mlthreat.perception.elicit import AnswersFileIo, Interview, ScriptedIo
from mlthreat.perception.model import Perception, Responsibility
from mlthreat.pipeline import Pipeline
from tests.conftest import EXAMPLES

CREDIT = EXAMPLES / "credit-scoring" / "pipeline.yaml"
# One component's answers: threats, defenses, responsibility, gain, reason, confidence.
PORTAL = ["2, someone steals our model", "a against 2; passwords against model stealing",
          "other team: platform", "no", "never seen it", "high"]


@pytest.fixture(scope="module")
def pipeline(example_pipeline: Callable[[str], Pipeline]) -> Pipeline:
    return example_pipeline("credit-scoring")


def test_picks_and_free_text(pipeline: Pipeline, catalog: Catalog, credit: Assessment) -> None:
    io = ScriptedIo(PORTAL)
    saved: list[Perception] = []
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, io, saved.append).run(Perception(respondent="r"))
    view = saved[-1].views[0]
    # The portal's list, alphabetically: 1 exploitation, 2 feedback-loop manipulation, ...
    assert "[1/14] Applicant web portal (client, public, owner web-team)" in io.said[0]
    assert io.said[2].strip() == "2. Feedback-loop manipulation (model skewing)"
    assert view.threats == ["aml-feedback-loop-manipulation", "someone steals our model"]
    assert view.defenses[0].control == "authentication"       # letter a
    assert view.defenses[0].against == ["aml-feedback-loop-manipulation"]
    assert view.defenses[1].control == "passwords" and view.defenses[1].against == ["model stealing"]
    assert view.responsibility == Responsibility.other_team and view.responsible == "platform"
    assert view.attacker_gain is False and view.confidence == "high"
    assert saved[-1].complete is False


def test_resume_skips_answered_components(pipeline: Pipeline, catalog: Catalog,
                                          credit: Assessment) -> None:
    first: list[Perception] = []
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, ScriptedIo(PORTAL), first.append).run(
            Perception(respondent="r"))
    io = ScriptedIo([""] * 6 * 13)   # Enter everywhere for the thirteen remaining components
    done = Interview(pipeline, catalog, credit, io).run(first[-1])
    assert done.complete
    assert [v.component for v in done.views] == [c.id for c in pipeline.spec.components]
    assert "[2/14]" in io.said[0]   # picked up at the second component


def test_bad_answer_without_terminal_is_an_input_error(pipeline: Pipeline, catalog: Catalog,
                                                        credit: Assessment) -> None:
    io = ScriptedIo(["", "", "us", "perhaps"])
    with pytest.raises(InputError, match="attacker_gain: 'perhaps' is not one of"):
        Interview(pipeline, catalog, credit, io).run(Perception(respondent="r"))
    with pytest.raises(InputError, match="no number 99"):
        Interview(pipeline, catalog, credit, ScriptedIo(["99"])).run(Perception(respondent="r"))


def test_answers_file_io(pipeline: Pipeline, catalog: Catalog, credit: Assessment) -> None:
    io = AnswersFileIo({"scoring_api": {"threats": [1, "model stealing"], "attacker_gain": False,
                                        "responsibility": "us"}})
    done = Interview(pipeline, catalog, credit, io).run(Perception(respondent="r"), io.covers)
    assert [v.component for v in done.views] == ["scoring_api"]
    assert done.views[0].attacker_gain is False and done.views[0].threats[1] == "model stealing"


def _cli(args: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "mlthreat"
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_cli_piped_answers_pause_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "me.yaml"
    proc = _cli(["elicit", str(CREDIT), "-o", str(out), "--respondent", "p9", "--team", "risk-ml"],
                "\n".join(PORTAL) + "\n")
    assert proc.returncode == 0 and "interview paused" in proc.stderr
    data = yaml.safe_load(out.read_text())
    assert data["complete"] is False and len(data["views"]) == 1
    proc = _cli(["elicit", str(CREDIT), "-o", str(out)], "\n" * 6 * 13)
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load(out.read_text())
    assert data["complete"] is True and len(data["views"]) == 14 and data["respondent"] == "p9"
    # The result is a valid perception file that `model` compares.
    proc = _cli(["model", str(CREDIT), "--perception", str(out), "-f", "json"])
    assert proc.returncode == 0 and '"attacker_doubt"' in proc.stdout
    # A finished interview is never overwritten silently.
    proc = _cli(["elicit", str(CREDIT), "-o", str(out), "--respondent", "x"], "")
    assert proc.returncode == 2 and "not overwritten" in proc.stderr


def test_cli_answers_file(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({"respondent": "p10", "team": "risk-ml", "components": {
        "scoring_api": {"threats": "model stealing, adversarial examples",
                        "defenses": "tls against adversarial examples",
                        "responsibility": "other team", "attacker_gain": "no"}}}))
    out = tmp_path / "p10.yaml"
    proc = _cli(["elicit", str(CREDIT), "-o", str(out), "--answers", str(answers)])
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load(out.read_text())
    assert data["respondent"] == "p10" and data["views"][0]["component"] == "scoring_api"
    proc = _cli(["model", str(CREDIT), "--perception", str(out), "-f", "md"])
    assert "Misattributed defenses" in proc.stdout and "Doubt about the attacker" in proc.stdout


def test_cli_requires_respondent_without_terminal(tmp_path: Path) -> None:
    proc = _cli(["elicit", str(CREDIT), "-o", str(tmp_path / "x.yaml")], "")
    assert proc.returncode == 2 and "--respondent is required" in proc.stderr


def test_question_mark_explains(pipeline: Pipeline, catalog: Catalog, credit: Assessment) -> None:
    io = ScriptedIo(["?", "1"])
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, io).run(Perception(respondent="r"))
    description = catalog.threat("cls-public-app-exploit").description
    assert any(description in line for line in io.said)


class _Person(ScriptedIo):
    """A person at a terminal: can be asked again; the prompts are kept."""

    interactive = True

    def __init__(self, answers: list[str]) -> None:
        super().__init__(answers)
        self.prompts: list[str] = []

    def ask(self, component: str, question: str, prompt: str) -> str:
        self.prompts.append(prompt)
        return super().ask(component, question, prompt)


def test_a_vague_answer_is_asked_about_again(catalog: Catalog, credit: Assessment,
                                             example_pipeline: Callable[[str], Pipeline]) -> None:
    from mlthreat.perception.loader import Mappers
    pipeline = example_pipeline("credit-scoring")
    mappers = Mappers.for_catalog(catalog)
    # "attacks" names nothing; asked again, the person says what they meant in other words.
    # "copying our model" maps at once and is not asked about.
    io = _Person(["attacks, copying our model", "people faking their income to get approved",
                  "", "", "", "", ""])
    saved: list[Perception] = []
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, io, saved.append, mappers=mappers).run(
            Perception(respondent="r"))
    view = saved[-1].views[0]
    assert view.threats == ["people faking their income to get approved", "copying our model"]
    assert any("'attacks' is too general to name one threat" in s for s in io.prompts)
    assert not any("copying our model" in s for s in io.prompts)
    # piped answers (not a person) are kept as given, never asked about
    io2 = ScriptedIo(["attacks", "", "", "", "", ""])
    saved.clear()
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, io2, saved.append, mappers=mappers).run(
            Perception(respondent="r"))
    assert saved[-1].views[0].threats == ["attacks"]
    # "no" keeps what the person said
    io3 = _Person(["attacks", "no", "", "", "", "", ""])
    saved.clear()
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, io3, saved.append, mappers=mappers).run(
            Perception(respondent="r"))
    assert saved[-1].views[0].threats == ["attacks"]


def test_a_weak_match_is_confirmed_not_taken(catalog: Catalog, credit: Assessment,
                                             example_pipeline: Callable[[str], Pipeline]) -> None:
    from mlthreat.perception.loader import Mappers
    from mlthreat.perception.mapping import CONFIRM
    pipeline = example_pipeline("credit-scoring")
    mappers = Mappers.for_catalog(catalog)
    said = "customers lying on the form"     # an evasion, read as a data-store breach
    weak = mappers.threats.map(said)
    assert weak.target == "cls-data-store-breach" and weak.score < CONFIRM

    def first_view(answers: list[str]) -> tuple[list[str], _Person]:
        io = _Person(answers)
        saved: list[Perception] = []
        with pytest.raises(EOFError):
            Interview(pipeline, catalog, credit, io, saved.append, mappers=mappers).run(
                Perception(respondent="r"))
        return saved[-1].views[0].threats, io

    # "no", then a number from the list: the listed threat, not the weak guess
    threats, io = first_view([said, "no", "1", "", "", "", "", ""])
    first = next(line for line in io.said if line.startswith("   1. "))   # the first component's
    assert [catalog.threat(t).name for t in threats] == [first.split(". ", 1)[1]]
    assert any(f"'{said}' reads as breach of a data store" in p for p in io.prompts)
    assert any(p.startswith("Which threat then?") for p in io.prompts)
    # "yes" takes the entry itself
    threats, _ = first_view([said, "yes", "", "", "", "", ""])
    assert threats == ["cls-data-store-breach"]


def test_a_defense_in_own_words_is_asked_about_by_letter(
        catalog: Catalog, credit: Assessment,
        example_pipeline: Callable[[str], Pipeline]) -> None:
    from mlthreat.perception.loader import Mappers
    pipeline = example_pipeline("credit-scoring")
    mappers = Mappers.for_catalog(catalog)
    assert mappers.controls.map("we trust our people").target is None
    io = _Person(["", "we trust our people", "a", "", "", "", ""])
    saved: list[Perception] = []
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, io, saved.append, mappers=mappers).run(
            Perception(respondent="r"))
    first = next(line for line in io.said if line.strip().startswith("a) "))
    control = next(c for c in catalog.controls if c.name == first.split(") ", 1)[1])
    assert [d.control for d in saved[-1].views[0].defenses] == [control.id]
    assert any("'we trust our people' names no defense mlthreat knows" in p and "a letter" in p
               for p in io.prompts)
    # a defense that maps well ("our firewall") is not asked about
    io2 = _Person(["", "our firewall", "", "", "", ""])
    saved.clear()
    with pytest.raises(EOFError):
        Interview(pipeline, catalog, credit, io2, saved.append, mappers=mappers).run(
            Perception(respondent="r"))
    assert [d.control for d in saved[-1].views[0].defenses] == ["our firewall"]
    assert not any("'our firewall'" in p for p in io2.prompts)
