"""Writes the support-tweets example's model (run from this folder; mlthreat never runs it):
models/triage.joblib, a scikit-learn Pipeline (TF-IDF of words and word pairs, then logistic
regression) trained on the texts of data/tweets.csv that the spec's split calls training texts
(test_size 600, seed 0, stratified by sentiment)."""

import joblib
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

tweets = pd.read_csv("data/tweets.csv")
text, label = tweets["text"].fillna(""), tweets["sentiment"]
train, test = train_test_split(range(len(tweets)), test_size=600, stratify=label, random_state=0)
model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=3000,
                                      sublinear_tf=True),
                      LogisticRegression(C=4.0, max_iter=1000))
model.fit(text.iloc[train], label.iloc[train])
print(f"held-out accuracy {model.score(text.iloc[test], label.iloc[test]):.3f}")
joblib.dump(model, "models/triage.joblib")
