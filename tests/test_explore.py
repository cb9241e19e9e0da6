"""The explore stage: CLI, front files, resume identity, determinism, re-ranking, bad input."""

import csv
import io
import json
import shutil

import pytest

from hwmlp import HwmlpError
from hwmlp.cli import main
from hwmlp.explore import (CHECKPOINT, FRONT_COLUMNS, FRONT_CSV, FRONT_JSON, FRONT_PNG, refresh_front, spread,
                           stage_explore, weight_set)
from hwmlp.flow import load_flow
from hwmlp.io import write_json_atomic
from hwmlp.pipeline import RunDir, stage_train
from hwmlp.search import WeightSet

FLOW = """\
data: {dataset: iris}
model: {epochs: 300}
designs: [{name: fixed6, scheme: fixed, weight_bits: 6}]
explore: {population: 12, generations: 4, max_designs: 2, max_accuracy_loss: 0.1, hidden_bits: 4}
"""
DESIGN_KEYS = set(FRONT_COLUMNS)


def write_flow(folder, text=FLOW, name="f.yaml"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A trained run folder of FLOW (copy it before changing it) and the flow file."""
    root = tmp_path_factory.mktemp("trained")
    flow_path = write_flow(root)
    stage_train(load_flow(flow_path), RunDir(root / "run"))
    return root / "run", flow_path


@pytest.fixture
def run(trained, tmp_path):
    shutil.copytree(trained[0], tmp_path / "run")
    return RunDir(tmp_path / "run")


def test_explore_writes_the_front_files_and_design_folders(trained, tmp_path, capsys):
    code = main(["explore", str(trained[1]), "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "fixed6 (exact baseline)" in captured.out
    run = RunDir(tmp_path / "r")
    front = json.loads(run.path(FRONT_JSON).read_text())
    assert front["format"] == "hwmlp.front" and front["flow"] == "f" and front["seed_design"] == "fixed6"
    assert front["generations"] == 4 and front["evaluations"] == 12 * 5 and front["ranked_by"] == "model_area_cm2"
    assert sum(front["samples"].values()) == 150
    designs = front["designs"]
    assert all(set(d) == DESIGN_KEYS for d in designs)
    assert [d["name"] for d in designs if d["baseline"]] == ["fixed6"]
    explored = sorted(d["name"] for d in designs if not d["baseline"])
    assert explored, "the search found no design within the loss budget"
    assert explored == [f"front_{k:02d}" for k in range(len(explored))]
    emitted = sorted(d["name"] for d in designs if d["emitted"] and not d["baseline"])
    assert len(emitted) == min(2, len(explored)) and emitted[0] == "front_00"
    assert run.design_names() == ["fixed6", *emitted]
    areas = [d["model_area_cm2"] for d in designs]
    assert areas == sorted(areas) and all(d["area_cm2"] is None and d["pareto"] is None for d in designs)
    split = run.split()
    for name in emitted:  # emitted designs are normal design folders, test accuracy reported
        entry = next(d for d in designs if d["name"] == name)
        assert run.model(name).accuracy(split.X_test, split.y_test) == entry["test_accuracy"]
        assert json.loads((run.design_dir(name) / "metrics.json").read_text())["accuracy"]["test"] == entry["test_accuracy"]
        assert run.model(name).name == f"f_{name}"
    rows = list(csv.DictReader(io.StringIO(run.path(FRONT_CSV).read_text())))
    assert tuple(rows[0]) == FRONT_COLUMNS and [r["name"] for r in rows] == [d["name"] for d in designs]
    assert [r["baseline"] for r in rows] == [str(d["baseline"]).lower() for d in designs]
    assert [float(r["val_accuracy"]) for r in rows] == [d["val_accuracy"] for d in designs]
    assert run.path(FRONT_PNG).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_interrupted_search_resumes_to_the_identical_front(trained, run, tmp_path, capsys):
    whole = tmp_path / "whole"
    assert run_cli(["explore", trained[1], "--out", whole], capsys)[0] == 0

    def crash_after_generation_2(stats):
        if stats.generation == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stage_explore(run, progress=crash_after_generation_2)
    assert not run.path(FRONT_JSON).exists() and run.path(CHECKPOINT).exists()
    code, err = run_cli(["explore", trained[1], "--out", run.root, "--resume"], capsys)
    assert code == 0, err
    assert run.path(FRONT_JSON).read_bytes() == (whole / FRONT_JSON).read_bytes()
    for name in run.design_names():
        assert (run.design_dir(name) / "model.json").read_bytes() == (whole / "designs" / name / "model.json").read_bytes()


def test_same_flow_and_seed_give_the_same_front_and_verilog(trained, tmp_path, capsys):
    fronts, verilog = [], []
    for k in range(2):
        out = tmp_path / f"r{k}"
        assert run_cli(["explore", trained[1], "--out", out], capsys)[0] == 0
        assert run_cli(["emit", "--out", out], capsys)[0] == 0
        fronts.append((out / FRONT_JSON).read_bytes())
        verilog.append({p.relative_to(out): p.read_bytes() for p in sorted(out.glob("designs/*/*.v"))})
    assert fronts[0] == fronts[1] and verilog[0] == verilog[1]
    assert {p.parts[1] for p in verilog[0]} >= {"fixed6", "front_00"}
    assert run_cli(["explore", trained[1], "--out", tmp_path / "s", "--seed", "5"], capsys)[0] == 0
    assert (tmp_path / "s" / FRONT_JSON).read_bytes() != fronts[0]


def test_refresh_ranks_by_synthesized_area_and_marks_the_pareto_designs(run):
    front = stage_explore(run)
    emitted = [d for d in front["designs"] if d["emitted"]]
    # fake synthesis results: the baseline smallest, so it dominates every less accurate design
    fake = {d["name"]: (1.0 if d["baseline"] else 5.0 - k) for k, d in enumerate(emitted)}
    for name, area in fake.items():
        write_json_atomic(run.design_dir(name) / "synth.json", {"area_cm2": area, "power_mW": 3 * area})
    refreshed = refresh_front(run)
    assert refreshed == json.loads(run.path(FRONT_JSON).read_text()) and refreshed["ranked_by"] == "area_cm2"
    designs = refreshed["designs"]
    real = [d for d in designs if d["area_cm2"] is not None]
    assert [d["name"] for d in real] == sorted(fake, key=fake.get) and designs[: len(real)] == real
    assert all(d["pareto"] is None and d["power_mW"] is None for d in designs[len(real):])
    baseline = next(d for d in real if d["baseline"])
    assert baseline["pareto"] and baseline["power_mW"] == 3.0
    for d in real:
        better = [o for o in real if o is not d and o["val_accuracy"] >= d["val_accuracy"] and o["area_cm2"] <= d["area_cm2"]]
        assert d["pareto"] == (not better)
    rows = list(csv.DictReader(io.StringIO(run.path(FRONT_CSV).read_text())))
    assert [r["name"] for r in rows] == [d["name"] for d in designs]
    assert refresh_front(run) == refreshed  # idempotent


def test_training_again_discards_the_previous_search(trained, run, capsys):
    stage_explore(run)
    assert len(run.design_names()) > 1
    stage_train(load_flow(trained[1]), run)
    assert run.design_names() == ["fixed6"] and not run.path(FRONT_JSON).exists()
    assert sorted(p.name for p in run.path("designs").iterdir()) == ["fixed6"]


def test_spread_and_weight_sets():
    assert spread(3, 5) == [0, 1, 2] and spread(10, 0) == [] and spread(10, 1) == [0]
    assert spread(10, 4) == [0, 3, 6, 9] and spread(5, 5) == [0, 1, 2, 3, 4]
    assert weight_set({"set": "fixed", "digits": None}, 8) == WeightSet.fixed_point(8)
    assert weight_set({"set": "pow2", "digits": None}, 6) == WeightSet.powers_of_two(5)
    assert weight_set({"set": "csd", "digits": None}, 8) == WeightSet.signed_digits(2, 7)
    assert weight_set({"set": "csd", "digits": 3}, 8) == WeightSet.signed_digits(3, 7)


def test_defaults_and_seed_design(tmp_path):
    flow = load_flow(write_flow(tmp_path, "data: {dataset: iris}\ndesigns: [{name: p, scheme: pow2}, {name: q}]\n"))
    ex = flow["explore"]
    assert ex["enabled"] and ex["seed_design"] == "q" and ex["weights"] == {"set": "csd", "digits": None}
    flow = load_flow(write_flow(tmp_path, "data: {dataset: iris}\ndesigns: [{name: p, scheme: pow2}]\n"))
    assert flow["explore"]["seed_design"] == "p"


@pytest.mark.parametrize("text,match", [
    ("explore: {populaton: 10}", "unknown key 'populaton' in flow.explore"),
    ("explore: {weights: {set: csd, k: 2}}", "unknown key 'k' in flow.explore.weights"),
    ("explore: {weights: csd}", "flow.explore.weights must be a mapping"),
    ("explore: {weights: {set: ternary}}", "explore.weights.set must be one of pow2, csd, fixed"),
    ("explore: {weights: {set: pow2, digits: 2}}", "digits applies to set: csd only"),
    ("explore: {weights: {set: csd, digits: 0}}", "digits must be at least 1"),
    ("explore: {seed_design: fixed4}", "explore.seed_design 'fixed4' is not one of the designs: fixed8"),
    ("explore: {population: 1}", "explore.population must be at least 2"),
    ("explore: {generations: -1}", "explore.generations must be >= 0"),
    ("explore: {generations: ten}", "explore.generations must be an integer"),
    ("explore: {max_accuracy_loss: 5}", "explore.max_accuracy_loss must be a fraction"),
    ("explore: {objective: delay}", "explore.objective must be one of area, power"),
    ("explore: {validation_size: 1.0}", "explore.validation_size must lie strictly between 0 and 1"),
    ("explore: {max_designs: -2}", "explore.max_designs must be >= 0"),
    ("explore: {search_masks: 1}", "explore.search_masks must be true or false"),
    ("explore: {hidden_bits: 17}", "explore.hidden_bits must be 1..16"),
    ("explore: {backend: jax}", "explore.backend must be numpy or torch"),
    ("explore: {device: cuda}", "needs backend: torch"),
    ("explore: {enabled: yes please}", "explore.enabled must be true or false"),
    ("designs: [{name: front_01}]", "reserved for explored designs"),
])
def test_bad_explore_settings_are_refused(tmp_path, text, match):
    with pytest.raises(HwmlpError, match=match):
        load_flow(write_flow(tmp_path, f"data: {{dataset: iris}}\n{text}\n"))


def one_line_error(code, err, match):
    """Exit status 2 and the error as the one last line (after any finished stages' lines)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and lines[-1].startswith("hwmlp: error:") and match in lines[-1], err
    assert all(line.startswith("done ") for line in lines[:-1]) and "Traceback" not in err


def test_resume_needs_a_checkpoint_of_the_same_flow(trained, run, tmp_path, capsys):
    code, err = run_cli(["explore", trained[1], "--out", run.root, "--resume"], capsys)
    one_line_error(code, err, "no search checkpoint")
    code, err = run_cli(["run", trained[1], "--out", tmp_path / "empty", "--resume"], capsys)
    one_line_error(code, err, "no search checkpoint")
    stage_explore(run)
    other = write_flow(tmp_path, FLOW.replace("population: 12", "population: 14"), "other.yaml")
    code, err = run_cli(["explore", other, "--out", run.root, "--resume"], capsys)
    one_line_error(code, err, "comes from a different flow (explore.population differs)")
    code, err = run_cli(["explore", trained[1], "--out", run.root, "--resume", "--seed", "3"], capsys)
    one_line_error(code, err, "(seed differs)")
    longer = write_flow(tmp_path, FLOW.replace("generations: 4", "generations: 6"), "f.yaml")
    code, err = run_cli(["explore", longer, "--out", run.root, "--resume"], capsys)  # a search may be extended
    assert code == 0, err
    assert json.loads(run.path(FRONT_JSON).read_text())["generations"] == 6
    fewer = write_flow(tmp_path, FLOW.replace("generations: 4", "generations: 6").replace("max_designs: 2", "max_designs: 1"))
    code, err = run_cli(["explore", fewer, "--out", run.root, "--resume"], capsys)  # emitted designs chosen afresh
    assert code == 0, err
    front = json.loads(run.path(FRONT_JSON).read_text())
    assert sum(d["emitted"] and not d["baseline"] for d in front["designs"]) == 1
    checked = write_flow(tmp_path, FLOW.replace("generations: 4", "generations: 6").replace("max_designs: 2", "max_designs: 1")
                         + "verify: {simulator: icarus}\nsynth: {enabled: false}\n")
    code, err = run_cli(["explore", checked, "--out", run.root, "--resume"], capsys)  # post-search settings may change
    assert code == 0, err
    assert run.flow_config()["verify"]["simulator"] == "icarus" and run.flow_config()["synth"]["enabled"] is False


def test_unknown_explore_key_through_the_cli(tmp_path, capsys):
    code, err = run_cli(["explore", write_flow(tmp_path, "data: {dataset: iris}\nexplore: {gens: 3}\n"),
                         "--out", tmp_path / "r"], capsys)
    one_line_error(code, err, "unknown key 'gens' in flow.explore")
    tiny = FLOW.replace("max_designs: 2", "max_designs: 2, validation_size: 0.01")  # 1 sample, 3 classes
    code, err = run_cli(["explore", write_flow(tmp_path, tiny), "--out", tmp_path / "r"], capsys)
    one_line_error(code, err, "explore.validation_size 0.01: cannot carve a stratified validation split from 105")


@pytest.mark.slow
def test_run_emits_verifies_and_synthesizes_the_front(tmp_path, capsys):
    # 5-bit inputs: 20 input bits, so verification uses the test set plus a few random vectors
    text = FLOW.replace("{dataset: iris}", "{dataset: iris, input_bits: 5}")
    flow = write_flow(tmp_path, text + "verify: {simulator: icarus, random_vectors: 20}\n")
    code, err = run_cli(["run", flow, "--out", tmp_path / "r"], capsys)
    assert code == 0, err
    run = RunDir(tmp_path / "r")
    front = json.loads(run.path(FRONT_JSON).read_text())
    report = json.loads(run.path("report.json").read_text())
    emitted = [d for d in front["designs"] if d["emitted"]]
    assert [d["name"] for d in report["designs"]] == run.design_names() and len(emitted) >= 2
    assert front["ranked_by"] == "area_cm2" and all(d["area_cm2"] > 0 and d["pareto"] is not None for d in emitted)
    by_name = {d["name"]: d for d in report["designs"]}
    assert all(by_name[d["name"]]["area_cm2"] == d["area_cm2"] for d in emitted)
    assert all(by_name[d["name"]]["verification"]["mismatches"] == 0 for d in emitted)
