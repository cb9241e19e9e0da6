"""Data loading, splitting, scaling and quantization."""

import numpy as np
import pytest

from hwmlp import HwmlpError
from hwmlp.data import EMBEDDED, load_csv, load_embedded, load_integer_split, prepare, quantize_unsigned

SHARED_FILES = {
    "arrhythmia.csv": dict(missing="impute"),
    "balance-scale.csv": {}, "breast-cancer-wisconsin.csv": dict(drop=["X1"]), "cardio.csv": {},
    "column_2C.csv": {}, "column_3C.csv": {}, "mammographic_masses.csv": {}, "pendigits.csv": {},
    "seeds.csv": {}, "wine-red.csv": {}, "wine-white.csv": {},
}


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_datasets_load_without_download(name):
    ds = load_embedded(name)
    assert ds.X.shape[0] == len(ds.y) > 100
    assert sorted(set(ds.y.tolist())) == list(range(ds.n_classes))


def test_unknown_embedded_dataset_names_the_choices():
    with pytest.raises(HwmlpError, match="unknown dataset 'mnist'.*breast_cancer"):
        load_embedded("mnist")


def test_every_shared_dataset_loads_and_prepares(shared_datasets):
    files = sorted(p.name for p in shared_datasets.glob("*.csv"))
    assert set(files) <= set(SHARED_FILES), "a new shared dataset needs an entry here"
    for fname in files:
        ds = load_csv(shared_datasets / fname, **SHARED_FILES[fname])
        split = prepare(ds, 4, 0.1, seed=0)
        assert split.X_train.min() >= 0 and split.X_train.max() <= 15, fname
        assert split.X_test.dtype == np.int64
        assert len(split.y_train) + len(split.y_test) == len(ds.y)
        assert sorted(set(ds.y.tolist())) == list(range(ds.n_classes))


def test_csv_labels_are_remapped_and_the_mapping_kept(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a;b;Y\n1;2;7\n3;4;3\n5;6;7\n7;8;3\n")
    ds = load_csv(p)
    assert ds.classes == [3, 7]
    assert ds.y.tolist() == [1, 0, 1, 0]
    assert ds.feature_names == ["a", "b"]


def test_csv_separator_is_sniffed_and_columns_dropped(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("id,a,lab\n10,1.5,x\n11,2.5,y\n")
    ds = load_csv(p, label="lab", drop=["id"])
    assert ds.feature_names == ["a"] and ds.X[:, 0].tolist() == [1.5, 2.5]
    assert ds.classes == ["x", "y"]


def test_missing_values_error_drop_and_impute(tmp_path):
    p = tmp_path / "d.csv"
    rows = ["a;b;Y"] + [f"{i};{'' if i == 3 else i * 2};{i % 2}" for i in range(20)]
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(HwmlpError, match="1 rows have missing values.*drop or impute"):
        load_csv(p)
    assert load_csv(p, missing="drop").X.shape == (19, 2)
    ds = load_csv(p, missing="impute")
    split = prepare(ds, 4, 0.25, seed=0)
    assert not np.isnan(split.impute_values).any()
    assert split.X_train.max() <= 15


@pytest.mark.parametrize("text,kwargs,match", [
    ("a;b;Y\n1;2;0\n3;4;0\n", {}, "single class"),
    ("a;b\n1;2\n", {}, "label column 'Y' not in"),
    ("a;b;Y\n1;x;0\n2;3;1\n", {}, "'x' is not a number"),
    ("a;b;Y\n1;2;0\n", {"drop": ["c"]}, "to drop"),
    ("a;b;Y\n1;2\n", {}, "2 fields, header has 3"),
])
def test_bad_csv_files_get_one_line_errors(tmp_path, text, kwargs, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(HwmlpError, match=match):
        prepare(load_csv(p, **kwargs), 4, 0.3)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(HwmlpError, match="nope.csv not found"):
        load_csv(tmp_path / "nope.csv")


def test_split_is_stratified_seeded_and_scaling_fitted_on_train_only():
    ds = load_embedded("wine")
    a, b = prepare(ds, 4, 0.3, seed=1), prepare(ds, 4, 0.3, seed=1)
    assert np.array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, prepare(ds, 4, 0.3, seed=2).X_test)
    # Stratified: class proportions within one sample of the whole set's.
    for k in range(ds.n_classes):
        assert abs((a.y_test == k).sum() - 0.3 * (ds.y == k).sum()) <= 1
    # Train spans the full range per feature; test values are clipped into it.
    assert (a.X_train.min(axis=0) == 0).all() and (a.X_train.max(axis=0) == 15).all()
    assert a.X_test.min() >= 0 and a.X_test.max() <= 15
    assert np.array_equal(a.quantize(ds.X[:5]), a.quantize(ds.X[:5]))


def test_quantization_rounds_and_clips_unseen_values():
    assert quantize_unsigned(np.array([-0.2, 0.0, 0.49 / 15, 0.51 / 15, 1.0, 1.7]), 4).tolist() == [0, 0, 0, 1, 15, 15]


@pytest.mark.parametrize("bits", [0, 17, 2.5, True])
def test_impossible_input_widths_are_rejected(bits):
    with pytest.raises(HwmlpError, match="impossible input width"):
        prepare(load_embedded("iris"), bits, 0.3)


def test_prequantized_integer_split_is_not_rescaled(tmp_path):
    (tmp_path / "tr.csv").write_text("a;b;Y\n0;15;1\n3;4;2\n7;7;1\n1;1;2\n")
    (tmp_path / "te.csv").write_text("a;b;Y\n2;9;2\n")
    s = load_integer_split(tmp_path / "tr.csv", tmp_path / "te.csv", input_bits=4)
    assert s.X_train.tolist() == [[0, 15], [3, 4], [7, 7], [1, 1]]
    assert s.X_test.tolist() == [[2, 9]] and s.y_test.tolist() == [1] and s.classes == [1, 2]
    with pytest.raises(HwmlpError, match="integers in 0..7"):
        load_integer_split(tmp_path / "tr.csv", tmp_path / "te.csv", input_bits=3)
