"""Writes the image-community example's data and model (run from this folder; mlthreat never
runs it): data/digits.npz, scikit-learn's bundled digits as images, and models/moderation.pt,
the classifier's state dict trained on the images the spec's split calls training images
(test_size 500, seed 0, stratified)."""

import numpy as np
import torch
from net import fit
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
images = digits.images.astype(np.uint8)          # 1797 x 8 x 8, values 0..16
labels = digits.target.astype(np.int64)
np.savez_compressed("data/digits.npz", x=images, y=labels)
train, test = train_test_split(np.arange(len(labels)), test_size=500, stratify=labels,
                               random_state=0)
net = fit(images[train][:, None], labels[train], seed=0)
with torch.no_grad():
    predicted = net(torch.as_tensor(images[test][:, None] / 16.0, dtype=torch.float32))
print(f"held-out accuracy {(predicted.argmax(1).numpy() == labels[test]).mean():.3f}")
torch.save(net.state_dict(), "models/moderation.pt")
