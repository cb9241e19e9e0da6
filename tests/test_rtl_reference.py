"""The checked-in reference designs (rtl/) regenerate byte for byte from their integer models."""

from pathlib import Path

import pytest

from hwmlp import IntMLP
from hwmlp.rtl import to_verilog, top_name

RTL = Path(__file__).resolve().parents[1] / "rtl"
MODELS = sorted(RTL.glob("*/*/model.json"))


def test_reference_designs_exist():
    assert {p.parts[-3] for p in MODELS} >= {"breast_cancer", "iris"}


@pytest.mark.parametrize("model", MODELS, ids=lambda p: f"{p.parts[-3]}/{p.parts[-2]}")
def test_verilog_regenerates_byte_identical(model):
    mlp = IntMLP.load(model)
    vlog = model.parent / f"{top_name(mlp)}.v"
    assert to_verilog(mlp).encode() == vlog.read_bytes(), "run `make rtl` after changing the generator"
