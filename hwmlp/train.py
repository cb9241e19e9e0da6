"""Reference float training of an MLP (torch; CUDA when available, CPU otherwise).

The float model sees what the circuit sees: quantized inputs scaled to [0, 1]
(``x_int / (2**input_bits - 1)``), hidden ReLUs, a linear output layer trained
with cross-entropy. Training is full-batch Adam with a fixed seed, so the same
data and seed give the same weights on the CPU (on one thread, whatever the
machine's core count).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .errors import HwmlpError


@dataclass
class FloatMLP:
    """Float weights ``(out, in)`` and biases per layer; hidden layers ReLU, output linear."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @property
    def topology(self) -> list[int]:
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    def logits(self, X01: np.ndarray) -> np.ndarray:
        h = np.asarray(X01, dtype=np.float64)
        for k, (W, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ W.T + b
            if k < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict(self, X01: np.ndarray) -> np.ndarray:
        return np.argmax(self.logits(X01), axis=1)

    def accuracy(self, X01: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(X01) == np.asarray(y)))


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is usable, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise HwmlpError("device cuda requested but no CUDA GPU is available: use device: auto or cpu")
    if device not in ("cpu", "cuda"):
        raise HwmlpError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device


def train_float(
    X01: np.ndarray,
    y: np.ndarray,
    hidden: list[int],
    n_classes: int,
    seed: int = 0,
    epochs: int = 2000,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
    device: str = "auto",
) -> FloatMLP:
    """Train a float MLP ``[F] + hidden + [n_classes]`` on features in [0, 1]."""
    import torch

    if any((not isinstance(h, int)) or h < 1 for h in hidden):
        raise HwmlpError(f"hidden layer sizes must be positive integers, got {hidden!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise HwmlpError(f"epochs must be a positive integer, got {epochs!r}")
    dev = torch.device(resolve_device(device))
    gen = torch.Generator().manual_seed(seed)
    sizes = [X01.shape[1], *hidden, n_classes]
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = torch.nn.Linear(a, b, dtype=torch.float32)
        bound = 1.0 / np.sqrt(a)
        with torch.no_grad():
            lin.weight.copy_(torch.empty(b, a).uniform_(-bound, bound, generator=gen))
            lin.bias.copy_(torch.empty(b).uniform_(-bound, bound, generator=gen))
        layers.append(lin)
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers).to(dev)
    Xt = torch.as_tensor(np.asarray(X01, dtype=np.float32), device=dev)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=dev)
    # Balanced class weights: small printed classifiers otherwise collapse onto the majority class.
    counts = torch.bincount(yt, minlength=n_classes).clamp(min=1).float()
    loss_fn = torch.nn.CrossEntropyLoss(weight=(counts.sum() / (n_classes * counts)) ** 0.5)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    with _single_thread(dev.type == "cpu"):
        for _ in range(epochs):
            opt.zero_grad()
            loss = loss_fn(net(Xt), yt)
            loss.backward()
            opt.step()
            sched.step()
    lins = [m for m in net if isinstance(m, torch.nn.Linear)]
    return FloatMLP(
        [m.weight.detach().cpu().double().numpy() for m in lins],
        [m.bias.detach().cpu().double().numpy() for m in lins],
    )


@contextlib.contextmanager
def _single_thread(enabled: bool):
    """Run torch on one CPU thread: the order of floating-point sums, and so the trained
    weights, then do not depend on the machine's core count or ``OMP_NUM_THREADS``
    (the tiny printed MLPs gain nothing from more threads)."""
    import torch

    if not enabled:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
