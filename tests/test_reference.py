"""Import of the published MICRO'20 exact models reproduces their recorded accuracy exactly."""

import numpy as np

from hwmlp.reference import load_published

EXPECTED = {"Balance_Scale", "Cardio", "Energy1", "Energy2", "Iris", "Pendigits", "Vertebral_Column_3C"}


def test_all_seven_published_accuracies_are_reproduced_exactly(published_json):
    models = load_published(published_json)
    assert set(models) == EXPECTED
    for name, pm in models.items():
        acc = pm.mlp.accuracy(pm.test_X, pm.test_y)
        assert acc == pm.test_accuracy, name
        assert pm.mlp.topology[0] == pm.test_X.shape[1]


def test_relu_outputs_fit_the_published_activation_widths(published_json):
    for pm in load_published(published_json).values():
        for r, bits in zip(pm.mlp.value_ranges(), pm.activation_bits):
            assert max(r.out_hi) < 2**bits
            assert min(r.out_lo) == 0


def test_published_predictions_use_first_maximum(published_json):
    pm = load_published(published_json)["Iris"]
    out = pm.mlp.forward(pm.test_X)
    assert np.array_equal(pm.mlp.predict(pm.test_X), out.argmax(axis=1))
