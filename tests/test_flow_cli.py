"""Flow validation and the CLI's handling of bad input: one line, exit status 2, nothing lost."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hwmlp import HwmlpError
from hwmlp.cli import main
from hwmlp.flow import load_flow

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "f.yaml"
    p.write_text(text)
    return p


def test_bundled_flows_are_valid():
    names = {p.stem for p in (REPO / "flows").glob("*.yaml")}
    assert {"breast_cancer", "iris", "cardio", "pendigits", "redwine", "whitewine"} <= names
    for p in (REPO / "flows").glob("*.yaml"):
        flow = load_flow(p)
        assert flow.name == p.stem
        if flow["data"]["csv"]:
            assert flow.resolve(flow["data"]["csv"]).name.endswith(".csv")


def test_defaults_are_filled_and_seed_overridden(tmp_path):
    flow = load_flow(write(tmp_path, "data: {dataset: iris}\n"), seed=7)
    assert flow.seed == 7 and flow.name == "f"
    assert flow["data"]["input_bits"] == 4 and flow["designs"][0]["scheme"] == "fixed"


@pytest.mark.parametrize("text,match", [
    ("data: {dataset: iris}\nmodle: {}\n", "unknown key 'modle' in flow"),
    ("data: {dataset: iris, bits: 4}\n", "unknown key 'bits' in flow.data"),
    ("data: {dataset: iris\n", "not valid YAML at line"),
    ("data: {dataset: mnist}\n", "unknown dataset 'mnist'"),
    ("data: {dataset: iris, csv: x.csv}\n", "exactly one source"),
    ("data: {dataset: iris, input_bits: 40}\n", "impossible input width 40"),
    ("data: {dataset: iris}\ndesigns: [{scheme: fixed, weight_bits: 1}]\n", "impossible weight width 1"),
    ("data: {dataset: iris}\ndesigns: [{scheme: float}]\n", "scheme must be one of"),
    ("data: {dataset: iris}\nmodel: {hidden: [0]}\n", "positive layer sizes"),
    ("data: {dataset: iris, test_size: 1.5}\n", "strictly between 0 and 1"),
    ("data: {dataset: iris}\nverify: {simulator: vcs}\n", "verify.simulator"),
    ("- 1\n- 2\n", "must be a mapping"),
    ("data: {dataset: iris}\ndesigns: [{name: a}, {name: a}]\n", "named 'a'"),
    ("data: {dataset: iris}\ndesigns: [{name: ../x}]\n", "letters, digits"),
])
def test_bad_flows_are_rejected_with_the_key_named(tmp_path, text, match):
    with pytest.raises(HwmlpError, match=match):
        load_flow(write(tmp_path, text))


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("flow_text,match", [
    ("data: {csv: missing.csv}\n", "missing.csv not found"),
    ("data: {dataset: iris}\nunknown: 1\n", "unknown key 'unknown'"),
])
def test_cli_user_errors_are_one_line_with_status_2(tmp_path, capsys, flow_text, match):
    code, err = run_cli(["train", write(tmp_path, flow_text), "--out", tmp_path / "run"], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hwmlp: error:") and match in lines[0]
    assert "Traceback" not in err


def test_cli_label_column_absent_and_one_class(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("a;b;lab\n1;2;0\n3;4;1\n")
    code, err = run_cli(["train", write(tmp_path, "data: {csv: d.csv}\n"), "--out", tmp_path / "r"], capsys)
    assert code == 2 and "label column 'Y' not in d.csv" in err
    (tmp_path / "e.csv").write_text("a;b;Y\n1;2;0\n3;4;0\n5;6;0\n")
    code, err = run_cli(["train", write(tmp_path, "data: {csv: e.csv}\n"), "--out", tmp_path / "r"], capsys)
    assert code == 2 and "single class" in err


def test_stage_without_its_inputs_says_which_step_to_run(tmp_path, capsys):
    code, err = run_cli(["emit", "--out", tmp_path / "nothing"], capsys)
    assert code == 2 and "hwmlp train" in err


def test_train_and_emit_write_artefacts_and_identical_verilog(tmp_path, capsys):
    flow = write(tmp_path, "data: {dataset: iris}\nmodel: {epochs: 300}\ndesigns: [{name: a}, {name: b, scheme: pow2, weight_bits: 5}]\n")
    assert run_cli(["train", flow, "--out", tmp_path / "r"], capsys)[0] == 0
    assert run_cli(["emit", "--out", tmp_path / "r"], capsys)[0] == 0
    first = sorted((tmp_path / "r").glob("designs/*/*.v"))
    assert [p.parent.name for p in first] == ["a", "b"]
    texts = [p.read_bytes() for p in first]
    assert run_cli(["train", flow, "--out", tmp_path / "r2"], capsys)[0] == 0
    assert run_cli(["emit", "--out", tmp_path / "r2"], capsys)[0] == 0
    assert [p.read_bytes() for p in sorted((tmp_path / "r2").glob("designs/*/*.v"))] == texts
    metrics = json.loads((tmp_path / "r/designs/a/metrics.json").read_text())
    assert metrics["topology"] == [4, 3, 3] and 0 <= metrics["accuracy"]["test"] <= 1
    assert yaml.safe_load((tmp_path / "r/flow.json").read_text())["designs"][1]["scheme"] == "pow2"


def test_console_script_prints_no_traceback_for_user_errors(tmp_path):
    flow = write(tmp_path, "data: {dataset: iris}\nmodel: {hidden: three}\n")
    proc = subprocess.run([sys.executable, "-m", "hwmlp.cli", "train", str(flow), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "hwmlp: error: model.hidden must be a list, got 'three'"
