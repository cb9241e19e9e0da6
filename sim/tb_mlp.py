"""cocotb testbench: a generated MLP circuit computes its golden model's class indices.

The testbench is driven by two environment variables, set by :func:`hwmlp.verify.verify`:

``HWMLP_TB_VECTORS``
    An ``.npz`` file written by :func:`save_vectors` (read with ``allow_pickle=False``):
    ``x``, an ``(N, n_inputs)`` array of unsigned features, ``expected``, the ``(N,)``
    class indices of the golden model, and ``input_bits``, the width of one feature.
``HWMLP_TB_RESULT``
    The JSON file the testbench writes: ``vectors``, ``mismatches`` and
    ``first_mismatches`` (up to :data:`MAX_REPORTED` entries of ``vector``,
    ``expected`` and ``got``; ``got`` is a string when ``y`` held X/Z bits).

The circuit's port contract is that of :mod:`hwmlp.rtl`: input ``x`` packs the
features LSB-first, ``input_bits`` bits each; output ``y`` is the class index.
The circuit is combinational, so each vector is applied and ``y`` read 1 ns later.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import Timer

VECTORS_ENV = "HWMLP_TB_VECTORS"
RESULT_ENV = "HWMLP_TB_RESULT"

#: How many mismatching vectors the result file lists.
MAX_REPORTED = 10


def save_vectors(path: str | Path, x: np.ndarray, expected: np.ndarray, input_bits: int) -> None:
    """Write the testbench's input: features ``x`` (N, n_inputs), class indices ``expected`` (N,)."""
    np.savez(path, x=x, expected=expected, input_bits=np.int64(input_bits))


def load_vectors(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """``(x, expected, input_bits)`` as written by :func:`save_vectors`."""
    with np.load(path, allow_pickle=False) as f:
        return f["x"], f["expected"], int(f["input_bits"])


def pack(x: np.ndarray, input_bits: int) -> list[int]:
    """Pack each row of ``x`` into one integer, feature 0 in the least significant bits."""
    packed = [0] * len(x)
    for i in range(x.shape[1]):
        shift = i * input_bits
        packed = [p | (v << shift) for p, v in zip(packed, x[:, i].tolist())]
    return packed


def read_class(y) -> int | str:
    """The class index on ``y`` (a vector, or a single bit for two classes),
    or its raw bit string when it holds X/Z bits."""
    value = y.value
    try:
        return int(value)
    except ValueError:
        return str(value)


@cocotb.test()
async def classifies_every_vector_like_the_golden_model(dut):
    """For every input vector, ``y`` equals the golden model's class index."""
    x, expected, input_bits = load_vectors(os.environ[VECTORS_ENV])
    assert len(dut.x) == x.shape[1] * input_bits, (
        f"x has {len(dut.x)} bits but the vectors pack {x.shape[1]} features "
        f"of {input_bits} bits: circuit and model do not belong together"
    )
    settle = Timer(1, "ns")

    got = []
    for word in pack(x, input_bits):
        dut.x.value = word
        await settle
        got.append(read_class(dut.y))

    expected = expected.tolist()
    wrong = [k for k, (e, g) in enumerate(zip(expected, got)) if e != g]
    first = [
        {"vector": x[k].tolist(), "expected": expected[k], "got": got[k]}
        for k in wrong[:MAX_REPORTED]
    ]
    result = {"vectors": len(expected), "mismatches": len(wrong), "first_mismatches": first}
    Path(os.environ[RESULT_ENV]).write_text(json.dumps(result, indent=1) + "\n")

    if wrong:
        m = first[0]
        raise AssertionError(
            f"{len(wrong)} of {len(expected)} vectors mismatch; first: x={m['vector']} "
            f"expected class {m['expected']}, circuit gave {m['got']}"
        )
