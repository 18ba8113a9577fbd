"""The mobile pre-check model of the credit-scoring example: a small PyTorch MLP on the encoded
application (numbers median-imputed and standardised, categories one-hot), shipped inside the
mobile app. `fit` is the training entry point the spec names (`train: models/mlp.py:fit`), so
mlthreat's poisoning and membership probes retrain it the way the team does."""

import numpy as np
import torch


class Scores:
    """A trained network seen as a scikit-learn-like model (predict_proba over encoded rows)."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net.eval()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.net(torch.as_tensor(np.asarray(x), dtype=torch.float32))
            return torch.softmax(logits, dim=1).numpy().astype(float)


def fit(x: np.ndarray, y: np.ndarray, seed: int) -> Scores:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 32), torch.nn.ReLU(),
                              torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-2, weight_decay=1e-4)
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    for _ in range(150):                       # full batch: a few thousand rows
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return Scores(net)
