"""Writes codes.csv: a small synthetic coded-interview data set (15 participants, two coders)
whose code co-occurrences match those Bieringer et al. (SOUPS 2022) report:

- model stealing and code breach together six times; code breach once more alone;
- model reverse engineering twice, both times with both of them;
- membership inference named by 3 participants, data breach by 11, together twice.

Co-occurring codes share a segment and each participant has one such segment, so the counts hold
per participant and per segment alike. Coder B sometimes leaves out a code coder A applied (never
adds one; once a whole segment, P11-S1), so agreement stays below 1; the rows of coder
"consensus" hold the agreed final coding (coder A's), from which the counts above are taken.
Run: python examples/interview-codes/make_codes.py
"""

import csv
from pathlib import Path

SEGMENTS = {  # participant -> list of segments, each a set of codes (coder A)
    "P01": [{"model stealing", "code breach", "model reverse engineering"}, {"data breach"}],
    "P02": [{"model stealing", "code breach", "model reverse engineering"}, {"data breach"}],
    "P03": [{"model stealing", "code breach"}, {"data breach"}, {"evasion"}],
    "P04": [{"model stealing", "code breach"}, {"data breach"}],
    "P05": [{"model stealing", "code breach"}, {"data breach"}, {"poisoning"}],
    "P06": [{"model stealing", "code breach"}, {"data breach", "encryption"}],
    "P07": [{"code breach"}, {"data breach"}],
    "P08": [{"membership inference", "data breach"}],
    "P09": [{"membership inference", "data breach"}, {"evasion"}],
    "P10": [{"membership inference"}, {"evasion", "encryption"}],
    "P11": [{"data breach"}, {"poisoning"}],
    "P12": [{"data breach"}, {"ML DoS", "DDoS"}],
    "P13": [{"evasion"}, {"ML DoS", "DDoS"}],
    "P14": [{"DDoS"}, {"poisoning"}],
    "P15": [{"evasion", "encryption"}],
}
# (participant, segment index, code) that coder B did not apply
B_OMITS = {("P02", 0, "model reverse engineering"), ("P11", 0, "data breach"),
           ("P10", 0, "membership inference"), ("P14", 1, "poisoning"), ("P06", 1, "encryption")}


def main() -> None:
    rows = []
    for participant, segments in SEGMENTS.items():
        for i, codes in enumerate(segments):
            segment = f"{participant}-S{i + 1}"
            for coder in ("A", "B", "consensus"):
                for code in sorted(codes):
                    if coder == "B" and (participant, i, code) in B_OMITS:
                        continue
                    rows.append({"participant": participant, "segment": segment,
                                 "coder": coder, "code": code})
    out = Path(__file__).with_name("codes.csv")
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["participant", "segment", "coder", "code"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out} ({len(rows)} codings)")


if __name__ == "__main__":
    main()
