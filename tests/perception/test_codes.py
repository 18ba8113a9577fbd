"""Research mode: the synthetic data reproduce the study's counts; CSV and REFI-QDA input."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mlthreat.errors import SpecError
from mlthreat.perception.codes import analyse_codes, read_codings
from tests.conftest import EXAMPLES

CODES = EXAMPLES / "interview-codes" / "codes.csv"


@pytest.mark.parametrize("unit", ["participant", "segment"])
def test_study_cooccurrence_counts(unit: str) -> None:
    r = analyse_codes(read_codings(CODES), "codes.csv", unit)
    assert r.together("model stealing", "code breach") == 6
    assert r.together("code breach", "code breach") == 7            # once more alone
    assert r.together("model reverse engineering", "model reverse engineering") == 2
    assert r.together("model reverse engineering", "model stealing") == 2
    assert r.together("model reverse engineering", "code breach") == 2
    per = dict(zip(r.codes, r.participants_per_code, strict=True))
    assert per["membership inference"] == 3 and per["data breach"] == 11
    assert r.together("membership inference", "data breach") == 2
    assert len(r.participants) == 15


def test_coder_agreement_by_hand(tmp_path: Path) -> None:
    # Two coders, four segments, one code: A codes x on s1, s2; B on s1, s3.
    # Binary over 4 segments: A = 1100, B = 1010 -> p_o = 0.5, p_e = 0.5 -> kappa 0.
    rows = ["participant,segment,coder,code"]
    rows += [f"P1,s{i},A,other" for i in range(1, 5)] + [f"P1,s{i},B,other" for i in range(1, 5)]
    rows += ["P1,s1,A,x", "P1,s2,A,x", "P1,s1,B,x", "P1,s3,B,x"]
    path = tmp_path / "c.csv"
    path.write_text("\n".join(rows) + "\n")
    r = analyse_codes(read_codings(path), "c.csv", "segment")
    x = [a for a in r.agreement if a.code == "x"][0]
    assert x.kappa == 0.0 and x.segments == 4
    other = [a for a in r.agreement if a.code == "other"][0]
    assert other.kappa is None          # both coders apply it everywhere: undefined


def test_example_agreement_below_one_but_high() -> None:
    r = analyse_codes(read_codings(CODES), "codes.csv")
    (overall,) = r.overall
    assert 0.9 < overall.kappa < 1.0  # type: ignore[operator]
    assert r.alpha is not None and 0.9 < r.alpha < 1.0


def test_csv_errors_are_located(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("participant,segment,code\nP1,s1,x\n")
    with pytest.raises(SpecError, match="missing column.*coder"):
        read_codings(path)
    path.write_text("participant,segment,coder,code\nP1,s1,A,x\nP2,,A,y\n")
    with pytest.raises(SpecError) as info:
        read_codings(path)
    assert f"{path}:3: empty segment" in str(info.value)


QDE = """<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="demo">
  <Users><User guid="u1" name="Ana"/><User guid="u2" name="Ben"/></Users>
  <CodeBook><Codes>
    <Code guid="c1" name="model stealing" isCodable="true"/>
    <Code guid="c2" name="code breach" isCodable="true"/>
  </Codes></CodeBook>
  <Sources>
    <TextSource guid="s1" name="P01">
      <PlainTextSelection guid="sel1" startPosition="0" endPosition="40">
        <Coding guid="k1" creatingUser="u1"><CodeRef targetGUID="c1"/></Coding>
        <Coding guid="k2" creatingUser="u1"><CodeRef targetGUID="c2"/></Coding>
        <Coding guid="k3" creatingUser="u2"><CodeRef targetGUID="c1"/></Coding>
      </PlainTextSelection>
    </TextSource>
    <TextSource guid="s2" name="P02">
      <PlainTextSelection guid="sel2" startPosition="0" endPosition="10">
        <Coding guid="k4" creatingUser="u1"><CodeRef targetGUID="c2"/></Coding>
      </PlainTextSelection>
    </TextSource>
  </Sources>
</Project>
"""


def test_refi_qda_project(tmp_path: Path) -> None:
    qdpx = tmp_path / "demo.qdpx"
    with zipfile.ZipFile(qdpx, "w") as z:
        z.writestr("project.qde", QDE)
    codings = read_codings(qdpx)
    assert {(c.participant, c.segment, c.coder, c.code) for c in codings} == {
        ("P01", "sel1", "Ana", "model stealing"), ("P01", "sel1", "Ana", "code breach"),
        ("P01", "sel1", "Ben", "model stealing"), ("P02", "sel2", "Ana", "code breach")}
    r = analyse_codes(codings, "demo.qdpx")
    assert r.together("model stealing", "code breach") == 1


def test_refi_qda_rejects_hostile_xml(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.qde"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;">]><Project>&b;</Project>')
    with pytest.raises(SpecError, match="refused: the XML declares entities"):
        read_codings(bomb)
