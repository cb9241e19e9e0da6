"""Genetic operators on :class:`Genome`, in DEAP's conventions.

Every operator takes the genome(s) first, then keyword parameters bound when it
is registered in a ``deap.base.Toolbox`` (the search space ``space`` and a
``numpy.random.Generator`` ``rng``, the only source of randomness, so a fixed seed
gives an identical run). Mutations change their argument in place and return a
1-tuple, crossover changes both parents in place and returns them, as DEAP's own
operators do.

* population doping: :func:`sparse_copy` (prune a seed hard), :func:`random_genome`;
  near-exact copies are the seed plus a mutation or two;
* mutations: :func:`mut_weight_step` (move one CSD digit by one power of two, or
  add a digit), :func:`mut_sign`, :func:`mut_zero`, :func:`mut_drop_input` (zero
  all weights of one input), :func:`mut_mask` (flip one
  partial-product mask bit), :func:`mut_qrelu` (shift a QReLU slice or change its
  width), :func:`mut_bias`, :func:`mut_argmax` (one more or one fewer argmax bit);
* :func:`cx_neurons`: uniform crossover whose unit is a whole neuron (its weights,
  masks, bias and QReLU low bit), plus the layer-level genes.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Mapping

import numpy as np

from ..arith.csd import csd
from .approx import WeightSet
from .genome import Genome, SearchSpace, full_mask


# ----- helpers ------------------------------------------------------------------------


def _active_bits(genome: Genome, space: SearchSpace, layer: int) -> int:
    """Width of the values entering ``layer``: input bits, or the previous QReLU width."""
    return space.input_bits if layer == 0 else int(genome.width[layer - 1])


def _pick_connection(genome: Genome, rng: np.random.Generator, nonzero: bool) -> tuple[int, int, int] | None:
    """A uniformly random connection ``(layer, neuron, input)``, among nonzero weights
    when ``nonzero``; None when there is none."""
    flat = np.concatenate([W.ravel() for W in genome.weights])
    candidates = np.flatnonzero(flat) if nonzero else None
    n = len(flat) if candidates is None else len(candidates)
    if n == 0:
        return None
    k = int(rng.integers(n))
    k = k if candidates is None else int(candidates[k])
    for l, W in enumerate(genome.weights):
        if k < W.size:
            j, i = divmod(k, W.shape[1])
            return l, j, i
        k -= W.size
    raise AssertionError("unreachable")


def _random_sign(rng: np.random.Generator) -> int:
    return 1 - 2 * int(rng.integers(2))


def _product_reach(genome: Genome, space: SearchSpace, layer: int, neuron: int) -> int:
    """Largest ``|sum_i w_i * (x_i & m_i)|`` the neuron's products can reach."""
    m = genome.masks[layer][neuron] & full_mask(_active_bits(genome, space, layer))
    return int(np.abs(genome.weights[layer][neuron]) @ m)


# ----- population doping ---------------------------------------------------------------


def random_genome(space: SearchSpace, rng: np.random.Generator) -> Genome:
    """A random member of ``space``: each weight a sum of up to ``max_digits`` (2 for
    fixed point) random signed powers of two, projected onto the weight set; random
    masks; biases within the reachable sum range; random QReLU slices within it."""
    ws = space.weights
    digits = ws.max_digits or 2
    genome = Genome([], [], [], [], rng.integers(1, space.hidden_bits + 1, size=space.n_hidden), 0)
    for l in range(space.n_layers):
        shape = (space.topology[l + 1], space.topology[l])
        signs = rng.choice([-1, 0, 1], size=(*shape, digits))
        exps = rng.integers(0, ws.max_exponent, size=(*shape, digits))
        genome.weights.append(ws.project((signs << exps).sum(axis=-1)))
        genome.masks.append(rng.integers(0, full_mask(space.in_bits(l)) + 1, size=shape))
        bounds = [_product_reach(genome, space, l, j) for j in range(shape[0])]
        genome.biases.append(np.array([int(rng.integers(-b, b + 1)) // 2 for b in bounds], dtype=np.int64))
        if l < space.n_hidden:
            top = max(1, max(bounds).bit_length())
            hi = min(space.max_lsb, max(0, top - int(genome.width[l])))
            n = shape[0] if space.per_neuron_lsb else 1
            genome.lsb.append(np.broadcast_to(rng.integers(0, hi + 1, size=n), shape[:1]).astype(np.int64))
    return genome


def sparse_copy(seed: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """A hard-pruned copy of ``seed``: keeps a random 5-50% of its largest weights,
    each rounded to its nearest signed power of two, only the top 1..B bits of every
    first-layer mask (when masks are searched), and narrows hidden QReLU slices by
    dropping low bits (the next layer's biases are rescaled to match)."""
    g = seed.copy()
    one_digit = WeightSet(space.weights.max_magnitude, 1)
    for l, W in enumerate(g.weights):
        keep = rng.uniform(0.05, 0.5)
        nonzero = np.abs(W[W != 0])
        if nonzero.size:
            W[np.abs(W) < np.quantile(nonzero, 1.0 - keep)] = 0
        g.weights[l] = one_digit.project(W)
    if space.search_masks:
        kept = int(rng.integers(1, space.input_bits + 1))
        g.masks[0] &= full_mask(space.input_bits) ^ full_mask(space.input_bits - kept)
    for l in range(space.n_hidden):
        new_width = int(rng.integers(1, g.width[l] + 1))
        drop = min(int(g.width[l]) - new_width, space.max_lsb - int(g.lsb[l].max()))
        g.width[l] -= drop
        g.lsb[l] += drop
        g.biases[l + 1] >>= drop
    return g


# ----- mutations ------------------------------------------------------------------------


def mut_weight_step(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Move one CSD digit of a random weight one power of two up or down (a digit
    moved below 2**0 disappears), or, when the weight has room for another digit
    (always for a zero weight), add a random signed power of two. Moves that leave
    the weight set are not taken."""
    l, j, i = _pick_connection(genome, rng, nonzero=False)
    w = int(genome.weights[l][j, i])
    digits = csd(w)
    ws = space.weights
    candidates = [w - digit.value + (digit.sign << (digit.shift + d) if digit.shift + d >= 0 else 0)
                  for digit in digits for d in (-1, 1)]
    if ws.max_digits is None or len(digits) < ws.max_digits:
        if not candidates or rng.random() < 0.5:
            candidates = [w + s * (1 << e) for s in (-1, 1) for e in range(ws.max_exponent + 1)]
    candidates = [c for c in candidates if c in ws]
    if candidates:
        genome.weights[l][j, i] = candidates[int(rng.integers(len(candidates)))]
    return (genome,)


def mut_sign(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Negate one random nonzero weight."""
    picked = _pick_connection(genome, rng, nonzero=True)
    if picked:
        l, j, i = picked
        genome.weights[l][j, i] *= -1
    return (genome,)


def mut_zero(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Set one random nonzero weight to zero (prune its connection)."""
    picked = _pick_connection(genome, rng, nonzero=True)
    if picked:
        l, j, i = picked
        genome.weights[l][j, i] = 0
    return (genome,)


def mut_drop_input(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Zero every weight one input (feature or hidden neuron) of a random layer feeds,
    chosen among the inputs still read: prunes a whole input's wiring at once."""
    picked = _pick_connection(genome, rng, nonzero=True)
    if picked:
        l, _, i = picked
        genome.weights[l][:, i] = 0
    return (genome,)


def mut_mask(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Flip one active bit of the partial-product mask of a random live connection."""
    picked = _pick_connection(genome, rng, nonzero=True)
    if picked:
        l, j, i = picked
        genome.masks[l][j, i] ^= 1 << int(rng.integers(_active_bits(genome, space, l)))
    return (genome,)


def mut_qrelu(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Shift a random hidden QReLU slice one bit up or down (one neuron's low bit when
    low bits are per neuron, else the layer's), or widen / narrow it by one bit."""
    if not space.n_hidden:
        return (genome,)
    l = int(rng.integers(space.n_hidden))
    step = _random_sign(rng)
    if rng.random() < 0.5:
        genome.width[l] = np.clip(genome.width[l] + step, 1, space.hidden_bits)
    else:
        lsb = genome.lsb[l]
        which = int(rng.integers(len(lsb))) if space.per_neuron_lsb else slice(None)
        lsb[which] = np.clip(lsb[which] + step, 0, space.max_lsb)
    return (genome,)


def mut_bias(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Add ``±2**k`` to a random bias, ``k`` uniform up to the bit length of the
    neuron's reachable sum range."""
    l = int(rng.integers(space.n_layers))
    j = int(rng.integers(space.topology[l + 1]))
    k = int(rng.integers(max(1, _product_reach(genome, space, l, j).bit_length()) + 1))
    genome.biases[l][j] += _random_sign(rng) << k
    return (genome,)


def mut_argmax(genome: Genome, space: SearchSpace, rng: np.random.Generator):
    """Let the argmax ignore one more or one fewer low bit."""
    genome.argmax_drop = int(np.clip(genome.argmax_drop + _random_sign(rng), 0, space.max_argmax_drop))
    return (genome,)


#: Default relative rates of the mutation operators (toolbox names -> weight).
MUTATION_RATES: Mapping[str, float] = {
    "mut_weight_step": 4.0,
    "mut_sign": 1.0,
    "mut_zero": 2.0,
    "mut_drop_input": 0.5,
    "mut_mask": 4.0,
    "mut_qrelu": 1.5,
    "mut_bias": 2.0,
    "mut_argmax": 0.5,
}


def mutate(genome: Genome, toolbox, rates: Mapping[str, float], extra: float, rng: np.random.Generator):
    """Apply ``1 + Poisson(extra)`` mutations, each drawn from the toolbox operators
    named in ``rates`` with probability proportional to its rate."""
    names = list(rates)
    cumulative = list(accumulate(rates[n] for n in names))
    for _ in range(1 + int(rng.poisson(extra))):
        getattr(toolbox, names[bisect_right(cumulative, rng.random() * cumulative[-1])])(genome)
    return (genome,)


# ----- crossover -------------------------------------------------------------------------


def cx_neurons(a: Genome, b: Genome, space: SearchSpace, rng: np.random.Generator):
    """Uniform crossover at neuron granularity: each neuron (incoming weights, masks,
    bias, QReLU low bit) comes whole from one parent or the other; each hidden layer's
    QReLU width (with its shared low bit when low bits are per layer) and the argmax's
    dropped bits likewise."""
    for l in range(space.n_layers):
        swap = rng.random(space.topology[l + 1]) < 0.5
        neuron_genes = [(a.weights[l], b.weights[l]), (a.masks[l], b.masks[l]), (a.biases[l], b.biases[l])]
        if l < space.n_hidden and space.per_neuron_lsb:
            neuron_genes.append((a.lsb[l], b.lsb[l]))
        for x, y in neuron_genes:
            x[swap], y[swap] = y[swap], x[swap]
    for l in range(space.n_hidden):
        if rng.random() < 0.5:
            a.width[l], b.width[l] = b.width[l], a.width[l]
            if not space.per_neuron_lsb:
                a.lsb[l], b.lsb[l] = b.lsb[l], a.lsb[l]
    if rng.random() < 0.5:
        a.argmax_drop, b.argmax_drop = b.argmax_drop, a.argmax_drop
    return a, b
