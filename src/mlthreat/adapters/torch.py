"""PyTorch modules mapping a float batch to logits (or probabilities), with gradients by
autograd; torch is imported only when such a model is probed. `mlp_from_state` rebuilds an MLP
from a state dict of Linear layers, so no code is ever loaded with a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlthreat.adapters.interface import Capabilities, ModelAdapter
from mlthreat.errors import ModelError


class TorchAdapter(ModelAdapter):
    """A PyTorch module mapping a float batch to logits (or probabilities with
    `outputs="probabilities"`). torch is imported only here, when such a model is probed."""

    def __init__(self, module: Any, outputs: str = "logits") -> None:
        super().__init__()
        import torch
        self.torch = torch
        self.module = module.eval()
        self.outputs = outputs
        self.capabilities = Capabilities(scores=True, gradients=True)

    def gradient(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        return torch_gradient(self, x, target)

    def _proba(self, x: Any) -> Any:
        torch = self.torch
        with torch.no_grad():
            out = self.module(torch.as_tensor(np.asarray(x), dtype=torch.float32))
            if self.outputs == "logits":
                out = torch.softmax(out, dim=1)
        return out.numpy().astype(float)


def torch_gradient(adapter: TorchAdapter, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Gradient of the margin (target logit minus the best other logit) with respect to x."""
    torch = adapter.torch
    adapter._count(len(x))
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32).requires_grad_(True)
    out = adapter.module(xt)
    if adapter.outputs != "logits":
        out = torch.log(out.clamp_min(1e-12))
    idx = torch.as_tensor(target, dtype=torch.long)
    own = out.gather(1, idx[:, None]).squeeze(1)
    others = out.clone()
    others[torch.arange(len(idx)), idx] = -float("inf")
    margin = own - others.max(dim=1).values
    margin.sum().backward()
    return np.asarray(xt.grad.detach().numpy(), dtype=float)


def mlp_from_state(state: dict[str, Any], path: Path) -> Any:
    """A PyTorch state dict of Linear layers ("0.weight", "0.bias", "2.weight", ...) as the
    torch.nn.Sequential it came from, with ReLU between the Linear layers: the architecture
    follows from the weights' shapes, so no code is loaded with the file."""
    import torch
    layers = sorted({k.rsplit(".", 1)[0] for k in state if k.endswith(".weight")},
                    key=lambda k: [int(p) if p.isdigit() else p for p in k.split(".")])
    if not layers or any(state[f"{k}.weight"].dim() != 2 for k in layers):
        raise ModelError(f"{path}: a state dict of Linear layers (an MLP) is expected; for other "
                         "architectures export the model to ONNX")
    modules: list[Any] = []
    for i, key in enumerate(layers):
        out_dim, in_dim = state[f"{key}.weight"].shape
        modules.append(torch.nn.Linear(in_dim, out_dim, bias=f"{key}.bias" in state))
        if i < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*modules)
    renamed = {}
    for j, key in enumerate(layers):
        for part in ("weight", "bias"):
            if f"{key}.{part}" in state:
                renamed[f"{2 * j}.{part}"] = state[f"{key}.{part}"]
    net.load_state_dict(renamed)
    return net.eval()


def pixels_module(module: Any, shape: tuple[int, int, int], mean: np.ndarray,
                  std: np.ndarray) -> Any:
    """`module` taking flattened pixel rows in the data's units: reshaped to N×C×H×W and
    normalised ((x - mean) / std per channel) inside the graph, so gradients are with respect
    to the pixels the attacker changes."""
    import torch

    class Pixels(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module.eval()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

        def forward(self, rows: Any) -> Any:
            return self.inner((rows.reshape(-1, *shape) - self.mean) / self.std)

    return Pixels().eval()
