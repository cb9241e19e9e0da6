"""The NSGA-II search: determinism, checkpoint/resume, constraint, validation selection."""

import json
from dataclasses import replace

import numpy as np
import pytest

from hwmlp.data import load_embedded, prepare
from hwmlp.errors import HwmlpError
from hwmlp.search import CostModel, SearchConfig, SearchSpace, WeightSet, run_search, to_intmlp, validation_split
from hwmlp.search.nsga import CHECKPOINT_FORMAT
from hwmlp.search.operators import random_genome

SPACE = SearchSpace((4, 3, 3), 4, WeightSet.powers_of_two(6), hidden_bits=4, max_lsb=8)
CONFIG = SearchConfig(population=12, offspring=12, generations=8, max_accuracy_loss=0.1, seed=3)


@pytest.fixture(scope="module")
def data():
    split = prepare(load_embedded("iris"), 4, test_size=0.2, seed=0)
    X_fit, y_fit, X_val, y_val = validation_split(split.X_train, split.y_train, 0.25, seed=0)
    # a weak seed model is enough to exercise the search mechanics
    seed = max((to_intmlp(random_genome(SPACE, np.random.default_rng(k)), SPACE) for k in range(30)),
               key=lambda m: m.accuracy(X_fit, y_fit))
    return seed, X_fit, y_fit, X_val, y_val


def search(data, config=CONFIG, **kwargs):
    return run_search(*data, SPACE, config, **kwargs)


def fingerprint(result) -> str:
    return json.dumps({
        "front": [d.to_dict() for d in result.front],
        "archive": [d.to_dict() for d in result.archive],
        "history": [vars(h) for h in result.history],
    })


def test_a_fixed_seed_gives_an_identical_run(data):
    assert fingerprint(search(data)) == fingerprint(search(data))
    assert fingerprint(search(data)) != fingerprint(search(data, replace(CONFIG, seed=4)))


@pytest.mark.parametrize("every", [1, 2])
def test_resume_after_an_interruption_gives_the_uninterrupted_result(data, tmp_path, every):
    expected = fingerprint(search(data, checkpoint=tmp_path / "whole.json"))

    def crash_after_gen_3(stats):
        if stats.generation == 3:
            raise KeyboardInterrupt

    checkpoint = tmp_path / "ckpt.json"
    with pytest.raises(KeyboardInterrupt):
        search(data, checkpoint=checkpoint, callback=crash_after_gen_3, checkpoint_every=every)
    saved = json.loads(checkpoint.read_text())  # plain JSON, no pickle
    assert saved["format"] == CHECKPOINT_FORMAT and len(saved["history"]) == 4 - (3 % every)
    assert fingerprint(search(data, checkpoint=checkpoint, resume=True, checkpoint_every=every)) == expected


def test_resume_can_extend_a_finished_search(data, tmp_path):
    checkpoint = tmp_path / "ckpt.json"
    short = replace(CONFIG, generations=4)
    finished = fingerprint(search(data, short, checkpoint=checkpoint))
    assert fingerprint(search(data, short, checkpoint=checkpoint, resume=True)) == finished
    assert fingerprint(search(data, checkpoint=checkpoint, resume=True)) == fingerprint(search(data))


def test_resume_refuses_a_different_search_or_a_missing_checkpoint(data, tmp_path):
    checkpoint = tmp_path / "ckpt.json"
    search(data, replace(CONFIG, generations=1), checkpoint=checkpoint)
    with pytest.raises(HwmlpError, match="different search"):
        search(data, replace(CONFIG, max_accuracy_loss=0.2), checkpoint=checkpoint, resume=True)
    with pytest.raises(HwmlpError, match="no search checkpoint"):
        search(data, checkpoint=tmp_path / "absent.json", resume=True)
    checkpoint.write_text("{}")
    with pytest.raises(HwmlpError, match="not a version"):
        search(data, checkpoint=checkpoint, resume=True)


def test_front_is_selected_on_validation_within_the_loss_budget(data):
    seed, X_fit, y_fit, X_val, y_val = data
    result = search(data)
    model = CostModel()
    assert result.seed.mlp is seed and result.seed.val_accuracy == seed.accuracy(X_val, y_val)
    for d in result.archive:  # every archived design met the constraint on the fitness data
        assert d.fit_accuracy >= seed.accuracy(X_fit, y_fit) - CONFIG.max_accuracy_loss
        assert d.mlp.equals(to_intmlp(d.genome, SPACE, seed.name, seed.classes))
        assert d.fit_accuracy == d.mlp.accuracy(X_fit, y_fit) and d.val_accuracy == d.mlp.accuracy(X_val, y_val)
        assert d.area_um2 == pytest.approx(model.of_mlp(d.mlp).area_um2[0])
    assert result.front, "the search found no design within the loss budget"
    areas = [d.area_um2 for d in result.front]
    accuracies = [d.val_accuracy for d in result.front]
    assert areas == sorted(areas) and accuracies == sorted(set(accuracies))
    assert min(accuracies) >= result.seed.val_accuracy - CONFIG.max_accuracy_loss
    for d in result.archive:  # nothing in the archive dominates a front design on validation
        assert not any(d.val_accuracy >= f.val_accuracy and d.area_um2 < f.area_um2 for f in result.front)


def test_progress_is_reported_every_generation(data):
    seen = []
    result = search(data, callback=seen.append)
    assert [s.generation for s in seen] == list(range(CONFIG.generations + 1))
    assert [s.evaluations for s in seen] == [CONFIG.population + k * CONFIG.offspring for k in range(len(seen))]
    assert seen == result.history
    last = seen[-1]
    assert last.front_size == len(result.archive)
    assert last.smallest_area_um2 == pytest.approx(min(d.area_um2 for d in result.archive))
    assert last.best_accuracy >= max(d.fit_accuracy for d in result.archive)
    assert all(b.smallest_area_um2 <= a.smallest_area_um2 for a, b in zip(seen, seen[1:]))  # the archive is elitist


def test_operators_can_be_re_registered(data):
    calls = []

    def customize(toolbox):
        original = toolbox.mut_bias

        def counted(genome):
            calls.append(1)
            return original(genome)

        toolbox.register("mut_bias", counted)

    search(data, replace(CONFIG, generations=2), customize=customize)
    assert calls


def test_validation_split_is_stratified():
    X = np.arange(200).reshape(100, 2)
    y = np.repeat([0, 1, 2, 3], 25)
    X_fit, y_fit, X_val, y_val = validation_split(X, y, 0.2, seed=1)
    assert len(y_val) == 20 and np.bincount(y_val).tolist() == [5, 5, 5, 5]
    assert sorted(np.concatenate([X_fit[:, 0], X_val[:, 0]]).tolist()) == X[:, 0].tolist()
    with pytest.raises(HwmlpError):
        validation_split(X, y, 1.0)


@pytest.mark.parametrize("kwargs", [dict(population=1), dict(max_accuracy_loss=2.0), dict(objective="delay"),
                                    dict(crossover_prob=1.5)])
def test_impossible_configs_are_refused(kwargs):
    with pytest.raises(HwmlpError):
        SearchConfig(**kwargs)


def test_config_round_trips():
    assert SearchConfig.from_dict(CONFIG.to_dict()) == CONFIG
