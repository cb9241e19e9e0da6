"""The genome of an approximate MLP and its exact mapping to :class:`IntMLP`.

A :class:`Genome` holds, for a fixed topology ``[n0, n1, ..., nL]``:

* ``weights[l]`` (out, in): integer weights from the :class:`SearchSpace`'s
  :class:`~hwmlp.search.approx.WeightSet`; their CSD digits (signs, exponents) are
  the genes the operators move, zero removes a connection;
* ``masks[l]`` (out, in): the partial-product mask of every connection, a
  bit mask over the ``space.in_bits(l)`` bits of the layer's input; only bits below
  the input's actual width matter (a hidden input is as wide as its QReLU slice);
* ``biases[l]`` (out,): integer biases on the scale of the products;
* ``lsb[l]`` (out,), hidden layers only: each neuron's QReLU low bit, and
  ``width[l]``: the layer's QReLU slice width in bits. Hidden neuron ``j`` outputs
  ``clip(s_j >> lsb_j, 0, 2**width - 1)``;
* ``argmax_drop``: low bits of the output values the argmax ignores.

The output layer's activation is fixed by the space (``none`` or ``relu``).

:func:`to_intmlp` maps a genome to the bit-exact :class:`IntMLP`. IntMLP has one
QReLU slice per layer, so a neuron with a lower ``lsb`` than the layer's highest
``L`` gets its weights and bias multiplied by ``2**(L - lsb_j)``: since
``(s * 2**d) >> (lsb + d) == s >> lsb``, outputs are identical and the circuit
only gains constant-zero low bits (no gates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import HwmlpError
from ..intmlp import Activation, IntLayer, IntMLP
from .approx import WeightSet

#: Kinds of output-layer activation a search space may fix.
OUTPUT_ACTIVATIONS = ("none", "relu")


@dataclass(frozen=True)
class SearchSpace:
    """The domains of a genome's genes.

    ``topology``: ``[inputs, hidden..., outputs]``. ``input_bits``: unsigned input
    width. ``weights``: the weight set. ``hidden_bits``: widest QReLU slice (bits) of
    a hidden layer. ``max_lsb``: highest QReLU low bit. ``max_argmax_drop``: most
    low bits the argmax may ignore. ``search_masks``: whether partial-product masks
    are searched (else they stay full). ``per_neuron_lsb``: whether each hidden
    neuron has its own QReLU low bit (else a layer shares one).
    """

    topology: tuple[int, ...]
    input_bits: int
    weights: WeightSet
    hidden_bits: int = 8
    max_lsb: int = 24
    max_argmax_drop: int = 24
    output_activation: str = "none"
    search_masks: bool = True
    per_neuron_lsb: bool = True

    def __post_init__(self):
        object.__setattr__(self, "topology", tuple(int(n) for n in self.topology))
        if len(self.topology) < 2 or min(self.topology) < 1:
            raise HwmlpError(f"impossible topology {list(self.topology)}: need [inputs, ..., outputs] >= 1")
        if self.topology[-1] < 2:
            raise HwmlpError("a classifier needs at least 2 output neurons")
        if not 1 <= self.input_bits <= 16:
            raise HwmlpError(f"impossible input width {self.input_bits}: use 1..16 bits")
        if not 1 <= self.hidden_bits <= 16:
            raise HwmlpError(f"impossible QReLU width {self.hidden_bits}: use 1..16 bits")
        if not 0 <= self.max_lsb <= 60 - self.hidden_bits:
            raise HwmlpError(f"impossible max_lsb {self.max_lsb}: use 0..{60 - self.hidden_bits}")
        if not 0 <= self.max_argmax_drop <= 60:
            raise HwmlpError(f"impossible max_argmax_drop {self.max_argmax_drop}: use 0..60")
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise HwmlpError(
                f"output activation {self.output_activation!r} cannot be searched: use none or relu"
            )

    @classmethod
    def for_model(cls, mlp: IntMLP, weights: WeightSet, **options) -> "SearchSpace":
        """The space of ``mlp``'s topology, input width and output activation;
        ``options``: the other fields."""
        return cls(tuple(mlp.topology), mlp.input_bits, weights,
                   output_activation=mlp.layers[-1].activation.kind, **options)

    @property
    def n_layers(self) -> int:
        return len(self.topology) - 1

    @property
    def n_hidden(self) -> int:
        return self.n_layers - 1

    def in_bits(self, layer: int) -> int:
        """Width of the mask genes of ``layer``: input bits, or the widest QReLU slice."""
        return self.input_bits if layer == 0 else self.hidden_bits

    def to_dict(self) -> dict:
        return {
            "topology": list(self.topology),
            "input_bits": self.input_bits,
            "weights": self.weights.to_dict(),
            "hidden_bits": self.hidden_bits,
            "max_lsb": self.max_lsb,
            "max_argmax_drop": self.max_argmax_drop,
            "output_activation": self.output_activation,
            "search_masks": self.search_masks,
            "per_neuron_lsb": self.per_neuron_lsb,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SearchSpace":
        return cls(**{**d, "topology": tuple(d["topology"]), "weights": WeightSet.from_dict(d["weights"])})


@dataclass(eq=False)
class Genome:
    """Genes of one approximate MLP (see the module docstring); int64 arrays."""

    weights: list[np.ndarray]
    masks: list[np.ndarray]
    biases: list[np.ndarray]
    lsb: list[np.ndarray]
    width: np.ndarray
    argmax_drop: int = 0
    #: The genes held as one array per layer (hidden layer for ``lsb``).
    LAYER_GENES = ("weights", "masks", "biases", "lsb")

    def copied_genes(self) -> tuple:
        """Deep copies of all genes, in constructor order."""
        per_layer = ([a.copy() for a in getattr(self, f)] for f in self.LAYER_GENES)
        return (*per_layer, self.width.copy(), int(self.argmax_drop))

    def copy(self) -> "Genome":
        """A deep copy (of the same class)."""
        return type(self)(*self.copied_genes())

    def same_genes(self, other: "Genome") -> bool:
        """Gene-for-gene equality."""
        return (
            self.argmax_drop == other.argmax_drop
            and np.array_equal(self.width, other.width)
            and all(
                len(getattr(self, f)) == len(getattr(other, f))
                and all(np.array_equal(a, b) for a, b in zip(getattr(self, f), getattr(other, f)))
                for f in self.LAYER_GENES
            )
        )

    def check(self, space: SearchSpace) -> None:
        """Raise HwmlpError unless every gene lies in its domain of ``space``."""
        topo = space.topology
        shapes_ok = (
            len(self.weights) == len(self.masks) == len(self.biases) == space.n_layers
            and len(self.lsb) == space.n_hidden
            and self.width.shape == (space.n_hidden,)
        )
        if not shapes_ok:
            raise HwmlpError(f"genome does not have the layers of topology {list(topo)}")
        for l in range(space.n_layers):
            shape = (topo[l + 1], topo[l])
            if self.weights[l].shape != shape or self.masks[l].shape != shape or self.biases[l].shape != shape[:1]:
                raise HwmlpError(f"genome layer {l} is not {shape[0]}x{shape[1]}")
            if not space.weights.contains(self.weights[l]).all():
                raise HwmlpError(f"genome layer {l} has weights outside the weight set {space.weights}")
            if ((self.masks[l] < 0) | (self.masks[l] >> space.in_bits(l) != 0)).any():
                raise HwmlpError(f"genome layer {l} has masks wider than {space.in_bits(l)} bits")
        for l, lsb in enumerate(self.lsb):
            if lsb.shape != (topo[l + 1],) or lsb.min() < 0 or lsb.max() > space.max_lsb:
                raise HwmlpError(f"genome hidden layer {l} has QReLU low bits outside 0..{space.max_lsb}")
            if not space.per_neuron_lsb and (lsb != lsb[0]).any():
                raise HwmlpError(f"genome hidden layer {l} has per-neuron QReLU low bits")
        if space.n_hidden and (self.width.min() < 1 or self.width.max() > space.hidden_bits):
            raise HwmlpError(f"genome has QReLU widths outside 1..{space.hidden_bits}")
        if not 0 <= self.argmax_drop <= space.max_argmax_drop:
            raise HwmlpError(f"genome drops {self.argmax_drop} argmax bits (0..{space.max_argmax_drop})")

    def to_dict(self) -> dict:
        return {
            **{f: [a.tolist() for a in getattr(self, f)] for f in self.LAYER_GENES},
            "width": self.width.tolist(),
            "argmax_drop": int(self.argmax_drop),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Genome":
        arrays = {f: [np.asarray(a, dtype=np.int64) for a in d[f]] for f in cls.LAYER_GENES}
        return cls(**arrays, width=np.asarray(d["width"], dtype=np.int64), argmax_drop=int(d["argmax_drop"]))


@dataclass
class GenomeBatch:
    """A population stacked gene by gene: every array gets a leading axis of size P."""

    weights: list[np.ndarray]
    masks: list[np.ndarray]
    biases: list[np.ndarray]
    lsb: list[np.ndarray]
    width: np.ndarray  # (P, n_hidden)
    argmax_drop: np.ndarray  # (P,)
    size: int = field(init=False)

    def __post_init__(self):
        self.size = len(self.argmax_drop)

    @classmethod
    def of(cls, genomes: "Sequence[Genome] | GenomeBatch") -> "GenomeBatch":
        """``genomes`` stacked, or as is when already a batch."""
        return genomes if isinstance(genomes, GenomeBatch) else cls.stack(genomes)

    def __getitem__(self, part: slice) -> "GenomeBatch":
        """The genomes ``part`` of the batch (a slice)."""
        return GenomeBatch(*([a[part] for a in getattr(self, f)] for f in Genome.LAYER_GENES),
                           self.width[part], self.argmax_drop[part])

    @classmethod
    def stack(cls, genomes: "Sequence[Genome]") -> "GenomeBatch":
        genomes = list(genomes)
        if not genomes:
            raise HwmlpError("cannot evaluate an empty population")
        g0 = genomes[0]
        per_layer = lambda f: [np.stack([getattr(g, f)[l] for g in genomes]) for l in range(len(getattr(g0, f)))]  # noqa: E731
        return cls(
            per_layer("weights"),
            per_layer("masks"),
            per_layer("biases"),
            per_layer("lsb"),
            np.stack([g.width for g in genomes]).reshape(len(genomes), -1),
            np.array([g.argmax_drop for g in genomes], dtype=np.int64),
        )


def full_mask(bits: int) -> int:
    """The mask keeping all ``bits`` bits."""
    return (1 << bits) - 1


def to_intmlp(genome: Genome, space: SearchSpace, name: str = "mlp", classes: list | None = None) -> IntMLP:
    """The bit-exact integer model of ``genome`` (see the module docstring)."""
    layers = []
    for l in range(space.n_layers):
        W, b = genome.weights[l], genome.biases[l]
        in_full = full_mask(space.input_bits if l == 0 else int(genome.width[l - 1]))
        masks = genome.masks[l] & in_full
        if (masks == in_full).all():
            masks = None
        if l < space.n_hidden:
            lsb = genome.lsb[l]
            top = int(lsb.max())
            if int(np.abs(W).max(initial=0) | np.abs(b).max()).bit_length() + top - int(lsb.min()) >= 62:
                raise HwmlpError(f"hidden layer {l}: QReLU low bits differ too much to fold into 62-bit weights")
            scale = np.left_shift(1, top - lsb)
            W, b = W * scale[:, None], b * scale
            act = Activation.qrelu(top + int(genome.width[l]) - 1, top)
        else:
            act = Activation(space.output_activation)
        layers.append(IntLayer(W, b, act, masks))
    return IntMLP(space.input_bits, layers, int(genome.argmax_drop), name, classes)


def from_intmlp(mlp: IntMLP, space: SearchSpace) -> Genome:
    """The genome closest to ``mlp`` in ``space``: a near-exact copy for seeding.

    Weights are projected onto the weight set. A hidden QReLU slice that fits the
    space is kept as is (while no earlier layer was rescaled). Any other hidden ReLU
    or QReLU becomes the slice of at most ``space.hidden_bits`` bits ending at its
    highest reachable output bit; the sums of every later layer are then smaller
    than the model's by the power of two their inputs were divided by (accumulated
    over the layers), so their biases are divided by it (rounded) and their slices
    are placed on that reduced scale. Masks are kept (full when the model has none).
    """
    if tuple(mlp.topology) != space.topology or mlp.input_bits != space.input_bits:
        raise HwmlpError(
            f"model {mlp.topology} with {mlp.input_bits}-bit inputs does not fit search space "
            f"{list(space.topology)} with {space.input_bits}-bit inputs"
        )
    if mlp.layers[-1].activation.kind != space.output_activation:
        raise HwmlpError(
            f"model output activation {mlp.layers[-1].activation.kind!r} differs from the search "
            f"space's {space.output_activation!r}"
        )
    ranges = mlp.value_ranges()
    weights, masks, biases, lsbs, widths = [], [], [], [], []
    shift = 0  # this layer's sums in the genome are the model's divided by 2**shift
    for l, (layer, r) in enumerate(zip(mlp.layers, ranges)):
        weights.append(space.weights.project(layer.weights))
        biases.append(_round_shift(layer.biases, shift))
        full = full_mask(space.in_bits(l))
        masks.append(full * np.ones_like(layer.weights) if layer.masks is None else layer.masks & full)
        if l == space.n_hidden:
            break
        act = layer.activation
        if act.kind not in ("relu", "qrelu"):
            raise HwmlpError(f"hidden layer {l} has activation {act.kind!r}: the search needs ReLU or QReLU")
        if act.kind == "qrelu" and act.width <= space.hidden_bits and act.lsb <= space.max_lsb and not shift:
            lsb, width = act.lsb, act.width
        else:  # the top reachable bits, on the model's scale, then moved down to the genome's
            msb = max(1, max(r.sum_hi).bit_length()) - 1
            msb = min(msb, act.msb) if act.kind == "qrelu" else msb
            lsb = min(space.max_lsb, max(0, max(act.lsb, msb - space.hidden_bits + 1) - shift))
            width = max(1, min(space.hidden_bits, msb - shift - lsb + 1))
        shift += lsb - act.lsb
        lsbs.append(np.full(space.topology[l + 1], lsb, dtype=np.int64))
        widths.append(width)
    genome = Genome(weights, masks, biases, lsbs, np.array(widths, dtype=np.int64),
                    min(mlp.argmax_drop_bits, space.max_argmax_drop))
    genome.check(space)
    return genome


def _round_shift(values: np.ndarray, shift: int) -> np.ndarray:
    """``values / 2**shift`` rounded to nearest (a negative shift multiplies)."""
    if shift <= 0:
        return values << -shift
    return (values + (1 << (shift - 1))) >> shift
