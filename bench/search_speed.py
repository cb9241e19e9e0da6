"""Genome evaluations per second on Cardio (21-3-3, 4-bit inputs, training split), one core.

Compares two evaluations of the same approximate models:

* reference: a straightforward per-sample Python evaluation, as published
  genetic printed-MLP tools do it (loops over samples, neurons and connections;
  accuracy only);
* ours: :func:`hwmlp.search.nsga.evaluate_population`, exactly what the search runs
  per generation: vectorized accuracy of the whole population plus the hardware
  cost model and the constrained fitness.

The population is the search's doped initial population (exact, near-exact,
sparse and random genomes) of a quickly trained 21-3-3 seed quantized to 8-bit
fixed point. Usage: ``python bench/search_speed.py [--json PATH]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy loads its BLAS

import argparse
import json
import time
from pathlib import Path

import numpy as np

CARDIO = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cardio.csv"


def reference_accuracy(mlp, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of an :class:`IntMLP` evaluated sample by sample in plain Python."""
    full = (1 << 62) - 1
    layers = [
        (layer.weights.tolist(), (layer.masks.tolist() if layer.masks is not None else None),
         layer.biases.tolist(), layer.activation)
        for layer in mlp.layers
    ]
    correct = 0
    for x, label in zip(X.tolist(), y.tolist()):
        h = x
        for W, M, B, act in layers:
            out = []
            for j, (row, b) in enumerate(zip(W, B)):
                s = b
                for i, w in enumerate(row):
                    s += w * (h[i] & (M[j][i] if M is not None else full))
                out.append(act.apply_int(s))
            h = out
        values = [v >> mlp.argmax_drop_bits for v in h]
        correct += values.index(max(values)) == label
    return correct / len(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--data", type=Path, default=CARDIO, help="the Cardio CSV (label column Y)")
    parser.add_argument("--population", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per measurement")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from hwmlp.data import load_csv, prepare
    from hwmlp.quantize import quantize_mlp
    from hwmlp.search import CostModel, PopulationEvaluator, SearchConfig, SearchSpace, WeightSet
    from hwmlp.search.genome import from_intmlp, to_intmlp
    from hwmlp.search.nsga import build_toolbox
    from hwmlp.train import train_float

    split = prepare(load_csv(args.data, label="Y"), input_bits=4, test_size=0.1, seed=0)
    X, y = split.X_train, split.y_train
    float_mlp = train_float(X / 15.0, y, [3], split.n_classes, seed=0, epochs=500, device="cpu")
    seed = quantize_mlp(float_mlp, 4, weight_bits=8, name="cardio")
    space = SearchSpace.for_model(seed, WeightSet.signed_digits(2, 7))
    config = SearchConfig(population=args.population)
    evaluator, cost_model = PopulationEvaluator(space, X, y), CostModel()
    toolbox = build_toolbox(space, config, evaluator, cost_model, 0.0, np.random.default_rng(0))
    population = toolbox.population(from_intmlp(seed, space), args.population)

    def rate(evaluate_once, n_per_call: int) -> float:
        evaluate_once()  # warm-up
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            evaluate_once()
            calls += 1
        return calls * n_per_call / (time.perf_counter() - start)

    ours = rate(lambda: toolbox.evaluate(population), len(population))
    sample = population[:: max(1, len(population) // 8)]
    for g in sample:  # the reference must agree with the vectorized evaluation
        assert reference_accuracy(to_intmlp(g, space), X, y) == g.metrics[0]
    k = iter(range(10**9))
    reference = rate(lambda: reference_accuracy(to_intmlp(sample[next(k) % len(sample)], space), X, y), 1)
    figures = {"reference_evals_per_s": reference, "evals_per_s": ours, "ratio": ours / reference}
    print(f"Cardio 21-3-3, {len(y)} training samples, population {len(population)}, one core")
    print(f"reference (per-sample Python): {reference:10.1f} genome evaluations/s")
    print(f"hwmlp (vectorized + cost):     {ours:10.1f} genome evaluations/s")
    print(f"ratio:                         {ours / reference:10.1f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
