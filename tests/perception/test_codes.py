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
    # Ana applied both codes to sel1, Ben only model stealing: with two coders and no consensus
    # a code holds where both applied it, so the two are never together; each coder's own counts
    # are kept
    assert r.view == "majority" and r.together("model stealing", "code breach") == 0
    ana, ben = r.by_coder
    assert dict(zip(r.codes, ana.participants_per_code, strict=True)) == {
        "code breach": 2, "model stealing": 1}
    assert dict(zip(r.codes, ben.participants_per_code, strict=True)) == {
        "code breach": 0, "model stealing": 1}


def test_refi_qda_rejects_hostile_xml(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.qde"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;">]><Project>&b;</Project>')
    with pytest.raises(SpecError, match="refused: the XML declares entities"):
        read_codings(bomb)


def _write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "c.csv"
    path.write_text("participant,segment,coder,code\n" + "\n".join(rows) + "\n")
    return path


def test_a_segment_one_coder_left_uncoded_is_a_disagreement(tmp_path: Path) -> None:
    # A codes x on s1..s3 and y on s4; B codes x on s1, s2 and y on s4, and leaves s3 without a
    # row. Over all segments (the default) s3 is "x" against "not coded".
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    rows = ["P1,s1,A,x", "P1,s2,A,x", "P1,s3,A,x", "P1,s4,A,y",
            "P1,s1,B,x", "P1,s2,B,x", "P1,s4,B,y", "P2,s5,A,y", "P2,s5,B,y"]
    codings = read_codings(_write(tmp_path, rows))
    r = analyse_codes(codings, "c.csv", "segment")
    segs = ["s1", "s2", "s3", "s4", "s5"]
    a_x, b_x = [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]
    x = next(a for a in r.agreement if a.code == "x")
    assert x.segments == 5 and x.kappa == round(cohen_kappa_score(a_x, b_x), 4)
    a_y, b_y = [0, 0, 0, 1, 1], [0, 0, 0, 1, 1]
    (overall,) = r.overall
    assert overall.kappa == round(cohen_kappa_score(a_x + a_y, b_x + b_y), 4)
    expected = krippendorff.alpha(reliability_data=[a_x + a_y, b_x + b_y],
                                  level_of_measurement="nominal")
    assert r.alpha == round(expected, 4)
    assert len(segs) == r.segments
    # scope "seen": only the segments a coder has a row for count -> s3 drops out for B
    seen = analyse_codes(codings, "c.csv", "segment", scope="seen")
    x_seen = next(a for a in seen.agreement if a.code == "x")
    assert x_seen.segments == 4 and x_seen.kappa == 1.0 and x.kappa < x_seen.kappa


def test_an_empty_code_marks_a_segment_read_and_left_uncoded(tmp_path: Path) -> None:
    rows = ["P1,s1,A,x", "P1,s2,A,x", "P1,s1,B,x", "P1,s2,B,", "P1,s3,A,", "P1,s3,B,"]
    r = analyse_codes(read_codings(_write(tmp_path, rows)), "c.csv", "segment", scope="seen")
    (x,) = r.agreement
    assert r.codes == ("x",) and x.segments == 3    # s2 counts for B (read), s3 for both
    from sklearn.metrics import cohen_kappa_score
    assert x.kappa == round(cohen_kappa_score([1, 1, 0], [1, 0, 0]), 4)


def test_cohens_kappa_matches_the_published_worked_example(tmp_path: Path) -> None:
    # Cohen's kappa's textbook example (50 proposals, two readers): yes/yes 20, yes/no 5,
    # no/yes 10, no/no 15 -> p_o = 0.7, p_e = 0.5, kappa = 0.4
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    rows = []
    for i, (a, b) in enumerate(pairs):
        rows += [f"P{i},s{i},A,{'grant' if a == 'yes' else ''}",
                 f"P{i},s{i},B,{'grant' if b == 'yes' else ''}"]
    r = analyse_codes(read_codings(_write(tmp_path, rows)), "c.csv")
    (grant,) = r.agreement
    assert grant.kappa == 0.4 and grant.segments == 50


def test_fleiss_kappa_for_three_coders_by_hand(tmp_path: Path) -> None:
    # 3 coders, 4 segments; number applying code x per segment: 3, 2, 0, 1.
    # P_i = (n1^2 + n0^2 - 3) / 6: 1, 1/3, 1, 1/3 -> P_bar = 2/3
    # p_x = 6/12 = 0.5 -> P_e = 0.5 -> kappa = (2/3 - 1/2) / (1/2) = 1/3
    applied = {"s1": "ABC", "s2": "AB", "s3": "", "s4": "C"}
    rows = [f"P1,{s},{c},{'x' if c in who else ''}" for s, who in applied.items() for c in "ABC"]
    r = analyse_codes(read_codings(_write(tmp_path, rows)), "c.csv", "segment")
    (fleiss,) = r.fleiss
    assert fleiss.code == "x" and fleiss.segments == 4 and fleiss.kappa == round(1 / 3, 4)


def test_consensus_coding_is_the_headline_and_is_not_compared(tmp_path: Path) -> None:
    rows = ["P1,s1,A,x", "P1,s1,B,y", "P1,s1,Consensus,x", "P1,s1,Consensus,y"]
    r = analyse_codes(read_codings(_write(tmp_path, rows)), "c.csv", "segment")
    assert r.view == "consensus" and r.consensus == "Consensus" and r.coders == ("A", "B")
    assert r.together("x", "y") == 1                   # the agreed coding has both
    assert [a.coders for a in r.overall] == [("A", "B")]
    no_consensus = analyse_codes(read_codings(_write(tmp_path, rows[:2])), "c.csv", "segment")
    assert no_consensus.view == "majority" and no_consensus.participants_per_code == (0, 0)


def test_codes_command_takes_the_scope(tmp_path: Path) -> None:
    import json

    from mlthreat.cli import main
    rows = ["P1,s1,A,x", "P1,s2,A,x", "P1,s1,B,x"]
    path = _write(tmp_path, rows)
    for scope, segments in (("all", 2), ("seen", 1)):
        out = tmp_path / f"{scope}.json"
        assert main(["codes", str(path), "--scope", scope, "-f", "json", "-o", str(out)]) == 0
        data = json.loads(out.read_text())
        assert data["scope"] == scope and data["overall"][0]["segments"] == segments


def test_refi_qda_selections_without_codes_count_as_read(tmp_path: Path) -> None:
    qde = QDE.replace('<PlainTextSelection guid="sel2" startPosition="0" endPosition="10">',
                      '<PlainTextSelection guid="sel3" startPosition="20" endPosition="30" '
                      'creatingUser="u2"/><PlainTextSelection guid="sel2" startPosition="0" '
                      'endPosition="10">')
    (tmp_path / "p.qde").write_text(qde)
    codings = read_codings(tmp_path / "p.qde")
    assert ("P02", "sel3", "Ben", "") in {(c.participant, c.segment, c.coder, c.code)
                                          for c in codings}
    r = analyse_codes(codings, "p.qde", "segment")
    assert r.segments == 3 and r.codes == ("code breach", "model stealing")
