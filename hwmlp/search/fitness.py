"""Accuracy of a whole population, vectorized over population x dataset.

No Python loop runs over samples; loops run over layers and hidden neurons only.

* First layer: a masked product is a sum over input bit planes,
  ``w * (x & m) = sum_b (w * m_b * 2**b) * x_b``, so the first-layer sums of the
  whole population are ONE matrix product ``W_eff (P*n1, n0*B) @ X_bits (n0*B, N)``.
  The product runs in float32 BLAS when every partial sum is provably below 2**24
  in magnitude (``max_row sum |W_eff| <= 2**24``), in float64 below 2**53, else in
  int64: exact in every case.
* Later layers see QReLU outputs of a few bits: ``b + sum_j w_j * (h_j & m_j)``,
  one broadcast step per input neuron ``j``.
* Activations, the argmax's dropped bits and the first-maximum argmax (ties to
  the lowest index) are exact integer operations, all in int32 when every sum
  is provably below 2**31 in magnitude, else in int64.

:class:`PopulationEvaluator` gives, for a list of genomes, exactly what
``to_intmlp(genome).predict(X)`` gives, bit for bit. It runs on numpy (default)
or torch (``backend="torch"``, device ``cpu``, ``cuda`` or ``auto``; ``auto`` falls
back to the CPU when no CUDA GPU is present).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

from ..errors import HwmlpError
from .cost import full_mask_of
from .genome import Genome, GenomeBatch, SearchSpace, full_mask

_FLOAT_EXACT = ((np.float32, 2**24), (np.float64, 2**53))


class PopulationEvaluator:
    """Predictions and accuracy of populations of genomes of ``space`` on ``(X, y)``.

    ``X``: (N, n_inputs) unsigned ``space.input_bits``-bit integers; ``y``: (N,)
    class indices. ``memory_budget_bytes`` bounds the largest intermediate array:
    bigger populations are evaluated in chunks. ``blas_threads``: threads of the
    numpy first-layer product (products this small run fastest on one thread, and
    extra BLAS threads spin against any other work on the machine).
    """

    def __init__(
        self,
        space: SearchSpace,
        X,
        y,
        backend: str = "numpy",
        device: str = "cpu",
        memory_budget_bytes: int = 64 << 20,
        blas_threads: int = 1,
    ):
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != space.topology[0] or len(X) == 0:
            raise HwmlpError(f"samples must have shape (N >= 1, {space.topology[0]}), got {X.shape}")
        if not np.array_equal(X, np.round(X)) or X.min() < 0 or X.max() > full_mask(space.input_bits):
            raise HwmlpError(f"samples must be integers in 0..{full_mask(space.input_bits)}")
        X = X.astype(np.int64)
        self.space = space
        self.y = np.asarray(y, dtype=np.int64)
        if self.y.shape != (len(X),):
            raise HwmlpError(f"{len(self.y)} labels for {len(X)} samples")
        self._ops = _backend(backend, device)
        bits = np.arange(space.input_bits)
        # (n0 * B, N): row i*B + b is bit b of feature i
        self._planes_int = ((X.T[:, None, :] >> bits[None, :, None]) & 1).reshape(-1, len(X))
        self._planes = {dtype: self._ops.asarray(self._planes_int.astype(dtype)) for dtype, _ in _FLOAT_EXACT}
        self._y = self._ops.asarray(self.y)
        self._chunk = max(1, memory_budget_bytes // (8 * max(space.topology[1:]) * len(X)))
        self._blas = ThreadpoolController()
        self._blas_threads = blas_threads

    def predict(self, genomes: Sequence[Genome] | GenomeBatch) -> np.ndarray:
        """(P, N) predicted class index per genome and sample."""
        return np.concatenate([self._ops.to_numpy(self._predict(chunk)) for chunk in self._chunks(genomes)])

    def accuracy(self, genomes: Sequence[Genome] | GenomeBatch) -> np.ndarray:
        """(P,) fraction of samples each genome classifies correctly."""
        ops = self._ops
        return np.concatenate([ops.to_numpy(ops.mean_equal(self._predict(chunk), self._y))
                               for chunk in self._chunks(genomes)])

    def _chunks(self, genomes) -> list[GenomeBatch]:
        batch = GenomeBatch.of(genomes)
        return [batch[k : k + self._chunk] for k in range(0, batch.size, self._chunk)]

    def _predict(self, batch: GenomeBatch):
        ops, space = self._ops, self.space
        bound = _sum_bound(batch, space)
        if bound >= 2**62:
            raise HwmlpError("weights too large: neuron sums could exceed 62 bits")
        int_dtype = np.int32 if bound < 2**31 else np.int64
        cast = lambda a: ops.asarray(np.asarray(a, dtype=int_dtype))  # noqa: E731
        for l in range(space.n_layers):
            if l == 0:
                s = self._first_layer_sums(batch, int_dtype) + cast(batch.biases[0])[:, :, None]
            else:
                s = _masked_sums(h, cast(batch.weights[l]), cast(batch.masks[l]), cast(batch.biases[l]))
            if l < space.n_hidden:
                h = ops.clip(s >> cast(batch.lsb[l])[:, :, None], cast(full_mask_of(batch.width[:, l]))[:, None, None])
            else:
                h = ops.clip(s, None) if space.output_activation == "relu" else s
        return _first_argmax(h >> cast(batch.argmax_drop)[:, None, None], ops)

    def _first_layer_sums(self, batch: GenomeBatch, int_dtype):
        """(P, n1, N) first-layer sums without biases: one matrix product over input bit planes."""
        ops = self._ops
        W, M = batch.weights[0], batch.masks[0]
        P, J, I = W.shape
        bits = np.arange(self.space.input_bits)
        W_eff = (W[..., None] * (((M[..., None] >> bits) & 1) << bits)).reshape(P * J, -1)
        bound = int(np.abs(W_eff).sum(axis=1).max())
        dtype = next((d for d, limit in _FLOAT_EXACT if bound <= limit), None)
        if dtype is None:  # beyond float64's exact integers: int64 product, on the host
            sums = ops.asarray(W_eff @ self._planes_int)
        else:
            with self._blas.limit(limits=self._blas_threads, user_api="blas"):
                sums = ops.asarray(W_eff.astype(dtype)) @ self._planes[dtype]
        return ops.cast(sums, int_dtype).reshape(P, J, -1)


def _masked_sums(h, W, M, b):
    """(P, out, N) sums ``b + sum_j W[:, :, j] * (h[:, j] & M[:, :, j])`` of a hidden
    layer's outputs ``h`` (P, in, N), one broadcast step per input neuron ``j``."""
    s = b[:, :, None]
    for j in range(W.shape[2]):
        s = s + W[:, :, j, None] * (h[:, None, j, :] & M[:, :, j, None])
    return s


def _first_argmax(values, ops):
    """(P, N) index of the first maximum over axis 1 of ``values`` (P, C, N)."""
    best = values[:, 0]
    index = best * 0  # zeros of the backend's type
    for c in range(1, values.shape[1]):
        better = values[:, c] > best
        best = ops.where(better, values[:, c], best)
        index = ops.where(better, c, index)
    return index


def _sum_bound(batch: GenomeBatch, space: SearchSpace) -> int:
    """Proven bound on the magnitude of every neuron sum and value in the batch."""
    bound = full_mask(max(space.input_bits, space.hidden_bits))
    for l in range(space.n_layers):
        in_bits = np.full((batch.size, 1, 1), space.input_bits) if l == 0 else batch.width[:, l - 1, None, None]
        reach = np.abs(batch.weights[l]) * (batch.masks[l] & full_mask_of(in_bits))
        bound = max(bound, int((np.abs(batch.biases[l]) + reach.sum(axis=2)).max()))
    return bound


def _backend(backend: str, device: str):
    if backend == "numpy":
        if device != "cpu":
            raise HwmlpError(f"the numpy backend runs on the CPU only (device {device!r}): use backend torch")
        return _NumpyOps()
    if backend == "torch":
        return _TorchOps(device)
    raise HwmlpError(f"unknown evaluation backend {backend!r}: use numpy or torch")


class _NumpyOps:
    """The few array operations the evaluator needs that numpy and torch spell differently."""

    asarray = staticmethod(np.asarray)

    @staticmethod
    def cast(x, dtype):
        return x.astype(dtype)

    where = staticmethod(np.where)

    @staticmethod
    def clip(x, top):
        x = np.maximum(x, 0)
        return x if top is None else np.minimum(x, top)

    @staticmethod
    def mean_equal(pred, y):
        return (pred == y).mean(axis=1)

    @staticmethod
    def to_numpy(x):
        return x


class _TorchOps:
    def __init__(self, device: str):
        import torch

        from ..train import resolve_device

        self.torch = torch
        self.device = torch.device(resolve_device(device))

    def asarray(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def cast(self, x, dtype):
        return x.to(getattr(self.torch, np.dtype(dtype).name))

    def where(self, condition, a, b):
        return self.torch.where(condition, a, b)

    def clip(self, x, top):
        x = self.torch.clamp(x, min=0)
        return x if top is None else self.torch.minimum(x, top)

    def mean_equal(self, pred, y):
        return (pred == y).to(self.torch.float64).mean(dim=1)

    def to_numpy(self, x):
        return x.cpu().numpy()
