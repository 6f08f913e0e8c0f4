"""Loading, label encoding, splits, standardization and minibatches."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import dump_svmlight_file

from softreg.errors import DataError
from softreg.io.selection import Selection
from softreg.io.sources import load_source
from softreg.model import standardize
from softreg.prepare.data import fit_standardizer
from softreg.prepare.features import as_numeric
from softreg.prepare.labels import encode_labels, select_classes
from softreg.prepare.split import split_indices
from softreg.train import ArrayData


def write(tmp_path, content, name="d.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, newline="")
    return path


def load(path, label=None, header=None, **kwargs):
    """A source as numeric features, the way training reads it."""
    return as_numeric(load_source(str(path), Selection(label=label), header=header, **kwargs))


def data_error(path, **kwargs):
    with pytest.raises(DataError) as caught:
        load(path, **kwargs)
    return str(caught.value)


def test_csv_with_bom_crlf_quotes_and_trailing_blank_lines(tmp_path):
    """A UTF-8 BOM, CRLF line ends, quoted fields and blank lines at the end all load."""
    path = write(tmp_path, '\ufeffa,"b",label\r\n1,"2.5",x\r\n3,4,"y"\r\n\r\n\r\n', mode="w")
    dataset = load(path)
    assert dataset.feature_names == ["a", "b"] and dataset.label_name == "label"
    np.testing.assert_array_equal(dataset.X, [[1, 2.5], [3, 4]])
    assert dataset.labels.tolist() == ["x", "y"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_detected_from_the_header(tmp_path, delimiter):
    """Semicolon, tab and pipe files load without saying which they are."""
    rows = [["a", "b", "y"], ["1", "2", "0"], ["3", "4", "1"]]
    path = write(tmp_path, "".join(delimiter.join(row) + "\n" for row in rows))
    np.testing.assert_array_equal(load(path).X, [[1, 2], [3, 4]])


def test_label_by_name_index_and_integer_labels(tmp_path):
    """The label column can be named or indexed; integer labels stay integers."""
    path = write(tmp_path, "y,a,b\n1,0.5,2\n0,1.5,3\n")
    by_name = load(path, label="y")
    by_index = load(path, label=0)
    assert by_name.labels.dtype.kind == "i" and by_name.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(by_name.X, by_index.X)
    assert by_name.feature_names == ["a", "b"]


def test_headerless_numeric_file_gets_column_names(tmp_path):
    """A first row of numbers is data, not a header."""
    dataset = load(write(tmp_path, "1,2,0\n3,4,1\n"))
    assert dataset.feature_names == ["col0", "col1"] and dataset.n_samples == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "d.csv: file is empty"),
        ("  \n\n", "d.csv: file is empty"),
        ("a,b,y\n", "d.csv: has a header but no data rows"),
        ("a,b,y\n1,2,0\n3,oops,1\n", "d.csv: line 3, column 'b': 'oops' is not a number"),
        ("a,b,y\n1,2,0\n3,,1\n", "d.csv: line 3, column 'b': an empty cell is not a number"
                                 "; set data.missing to drop, mean, median or most_frequent to handle missing cells"),
        (
            "a,b,y\n1,nan,0\n3,4,1\n",
            "d.csv: line 2, column 'b': nan is not a finite number (NaN and inf are not allowed in features)",
        ),
        (
            "a,b,y\n1,2,0\n3,inf,1\n",
            "d.csv: line 3, column 'b': inf is not a finite number (NaN and inf are not allowed in features)",
        ),
        ("a,b,y\n1,2,0\n3,4\n", "d.csv: line 3 has 2 fields, expected 3 (as in the header)"),
        ("a,a,y\n1,2,0\n", "d.csv: duplicate column name(s) 'a' in the header"),
        ("a,b,y\n1,2,0\n3,4, \n", "d.csv: line 3: empty label in column 'y'"),
    ],
)
def test_bad_delimited_files_name_line_and_column(tmp_path, content, message):
    """Each broken file gets one DataError naming the file, line and column."""
    assert data_error(write(tmp_path, content)).endswith(message)


def test_missing_label_column_lists_the_columns(tmp_path):
    """A label column that does not exist is named, with the columns that do."""
    path = write(tmp_path, "a,b,y\n1,2,0\n")
    assert data_error(path, label="target").endswith("d.csv: label column 'target' not found; columns are: a, b, y")


def test_missing_file_and_directory(tmp_path):
    """A path that does not exist, or is a folder, is named."""
    assert data_error(tmp_path / "nope.csv").endswith("nope.csv: data file not found")
    assert data_error(tmp_path).endswith("give a data file, or a folder of Parquet files")


def test_binary_garbage_is_not_text(tmp_path):
    """A binary file is refused as not UTF-8 text."""
    assert "not UTF-8 text" in data_error(write(tmp_path, b"\xff\xfe\x00\x81garbage", mode="wb"))


def test_npz_source_and_object_arrays_refused(tmp_path):
    """.npz with X and y loads; one holding object arrays is refused, never unpickled."""
    good = tmp_path / "good.npz"
    np.savez(good, X=np.arange(6.0).reshape(3, 2), y=np.array([0, 1, 0]))
    dataset = load(good)
    assert dataset.X.shape == (3, 2) and dataset.labels.tolist() == [0, 1, 0]
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.array([[1, 2]], dtype=object), y=np.array([0]))
    assert "cannot load without pickle" in data_error(bad)
    missing = tmp_path / "missing.npz"
    np.savez(missing, X=np.ones((2, 2)))
    assert data_error(missing).endswith("missing array(s) y; an .npz source needs X and y")


def test_svmlight_stays_sparse(tmp_path):
    """svmlight/libsvm input loads as CSR and is never densified: standardizing keeps it sparse (scaled),
    with the training part's true mean kept for the implicit centring."""
    rng = np.random.default_rng(0)
    X = sp.random(50, 30, density=0.1, format="csr", random_state=0)
    path = tmp_path / "d.svm"
    dump_svmlight_file(X, rng.integers(0, 3, 50), str(path))
    dataset = load(path)
    assert sp.issparse(dataset.X) and dataset.X.shape[0] == 50
    mean, scale = fit_standardizer(dataset.X, True)
    assert sp.issparse(standardize(dataset.X, mean, scale))
    np.testing.assert_allclose(mean, np.asarray(dataset.X.mean(axis=0)).ravel(), rtol=1e-12)


def test_single_class_and_unknown_class_subset(tmp_path):
    """One class is refused; a class subset naming a missing label lists the real ones."""
    only = load(write(tmp_path, "a,y\n1,k\n2,k\n"))
    with pytest.raises(DataError, match=r"only one class \('k'\) in the labels; need at least two"):
        encode_labels(only)
    dataset = load("builtin:iris")
    message = r"class\(es\) 'daisy' not in the data; its classes are: setosa, versicolor, virginica"
    with pytest.raises(DataError, match=message):
        select_classes(dataset, ["setosa", "daisy"])
    subset = select_classes(dataset, ["setosa", "virginica"])
    assert set(subset.labels) == {"setosa", "virginica"} and subset.n_samples == 100


def test_ordered_split_holds_out_the_last_rows():
    """split=ordered: the last fraction is held out, nothing is shuffled (the classic letters split)."""
    kept, held = split_indices(20000, 0.2, np.zeros(20000), "ordered", False, np.random.default_rng(0))
    np.testing.assert_array_equal(kept, np.arange(16000))
    np.testing.assert_array_equal(held, np.arange(16000, 20000))


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    """A stratified random split keeps proportions, partitions the rows and repeats for the same seed."""
    y = np.repeat([0, 1, 2], [50, 30, 20])
    kept, held = split_indices(100, 0.2, y, "random", True, np.random.default_rng(5))
    assert np.bincount(y[held]).tolist() == [10, 6, 4]
    assert sorted(np.concatenate([kept, held]).tolist()) == list(range(100))
    again = split_indices(100, 0.2, y, "random", True, np.random.default_rng(5))
    np.testing.assert_array_equal(held, again[1])


def test_standardizer_gives_constant_columns_scale_one():
    """Constant columns get scale 1 (no division by zero); others get mean 0 and std 1."""
    X = np.column_stack([np.full(10, 7.0), np.arange(10.0)])
    mean, scale = fit_standardizer(X, True)
    assert scale[0] == 1.0
    Z = standardize(X, mean, scale)
    np.testing.assert_allclose(Z[:, 0], 0.0)
    np.testing.assert_allclose([Z[:, 1].mean(), Z[:, 1].std()], [0.0, 1.0], atol=1e-12)


@given(st.integers(1, 60), st.integers(1, 70), st.integers(0, 1000))
def test_minibatches_visit_every_row_exactly_once(n_samples, batch_size, seed):
    """One epoch of minibatches is a partition of the rows, gathered correctly."""
    X = np.arange(n_samples * 2, dtype=float).reshape(n_samples, 2)
    y = np.arange(n_samples)
    seen = []
    for X_batch, y_batch, _ in ArrayData(X, y).minibatches(batch_size, np.random.default_rng(seed)):
        assert len(y_batch) <= batch_size
        np.testing.assert_array_equal(X_batch, X[y_batch])
        seen.extend(y_batch.tolist())
    assert sorted(seen) == list(range(n_samples))


@given(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
               elements=st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)),
    st.sampled_from([",", ";", "\t"]),
)
def test_csv_round_trip_is_exact(tmp_path_factory, X, delimiter):
    """Any finite matrix written with repr() floats reads back bit for bit."""
    path = tmp_path_factory.mktemp("rt") / "d.csv"
    names = [f"f{j}" for j in range(X.shape[1])]
    lines = [delimiter.join(names + ["y"])]
    lines += [delimiter.join([repr(float(v)) for v in row] + [str(i % 2)]) for i, row in enumerate(X)]
    path.write_text("\n".join(lines))
    dataset = load(path)
    np.testing.assert_array_equal(dataset.X, X)
    assert dataset.feature_names == names


def test_data_too_large_for_memory_suggests_float32(monkeypatch):
    """Data whose standardized copy cannot fit are refused before allocation, suggesting float32."""
    import softreg.prepare.data

    monkeypatch.setattr(softreg.prepare.data, "available_memory", lambda: 2**30)
    with pytest.raises(DataError) as caught:
        softreg.prepare.data.check_memory((100_000_000, 10), np.dtype(np.float64), "big.csv")
    assert str(caught.value) == (
        "big.csv: the standardized data need 7.5 GiB as float64 (100000000 x 10), but only 1.0 GiB of memory "
        "are free. Set model.dtype: float32 to halve it."
    )
    softreg.prepare.data.check_memory((1000, 10), np.dtype(np.float64), "small.csv")


def test_headerless_file_with_text_labels_needs_header_false(tmp_path):
    """data.header: false reads the first row as data (the UCI iris.data layout), losing no row."""
    path = write(tmp_path, "5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n")
    dataset = load(path, header=False)
    assert dataset.n_samples == 3 and dataset.feature_names == ["col0", "col1", "col2", "col3"]
    assert dataset.labels.tolist() == ["setosa", "setosa", "versicolor"] and not dataset.named


def test_integer_looking_labels_too_large_for_int64_stay_text(tmp_path):
    """Labels like 99999999999999999999 are kept as text instead of overflowing."""
    dataset = load(write(tmp_path, "a,y\n1,99999999999999999999\n2,1\n"))
    assert dataset.labels.tolist() == ["99999999999999999999", "1"]


def test_unnamed_features_align_by_position_and_count(tmp_path):
    """An .npz without feature names matches a model by position; a wrong count is named."""
    from softreg.io.sources import align_features

    path = tmp_path / "d.npz"
    np.savez(path, X=np.arange(8.0).reshape(2, 4), y=np.array([0, 1]))
    dataset = load(path)
    names = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    np.testing.assert_array_equal(align_features(dataset, names, "d.npz"), dataset.X)
    with pytest.raises(DataError, match=r"^d.npz: has 4 unnamed feature columns, the model expects 3$"):
        align_features(dataset, names[:3], "d.npz")


def test_separate_test_file_may_lack_a_selected_class(tmp_path):
    """With data.classes, a separate test file lacking one of them still loads."""
    from softreg.config import resolve
    from softreg.prepare.data import prepare, random_streams

    write(tmp_path, "a,y\n" + "".join(f"{i},{'ABC'[i % 3]}\n" for i in range(30)), name="train.csv")
    write(tmp_path, "a,y\n1,A\n2,A\n4,A\n", name="test.csv")
    data = {"source": "train.csv", "test": "test.csv", "classes": ["A", "B"], "val": 0}
    config = resolve({"data": data}, base_dir=tmp_path)
    prepared = prepare(config.data, np.float64, random_streams(0).split)
    assert prepared.test.n_samples == 3 and prepared.classes.tolist() == ["A", "B"]


def test_svmlight_test_file_keeps_the_training_index_base(tmp_path):
    """A 0-based test file that never uses index 0 is not misread as 1-based: columns never shift."""
    from softreg.config import resolve
    from softreg.prepare.data import prepare, random_streams

    (tmp_path / "train.svm").write_text("0 0:1 1:2 2:3\n1 0:4 2:1\n0 1:1\n1 0:2 2:2\n")
    (tmp_path / "test.svm").write_text("1 1:2.0 2:3.0\n")
    data = {"source": "train.svm", "test": "test.svm", "val": 0, "standardize": False}
    config = resolve({"data": data}, base_dir=tmp_path)
    prepared = prepare(config.data, np.float64, random_streams(0).split)
    np.testing.assert_array_equal(prepared.test.X.toarray(), [[0.0, 2.0, 3.0]])
    (tmp_path / "one.svm").write_text("0 1:1 3:2\n1 2:5\n")
    one_based = load(tmp_path / "one.svm")
    assert one_based.index_base == 1 and one_based.X.toarray().tolist() == [[1.0, 0.0, 2.0], [0.0, 5.0, 0.0]]


def test_thousands_of_columns_load(tmp_path):
    """A file with 3,000 feature columns loads with every value and name in place."""
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(20, 3000)), 4)
    header = ",".join([f"f{j}" for j in range(3000)] + ["y"])
    rows = [",".join([repr(float(v)) for v in row] + [str(i % 2)]) for i, row in enumerate(X)]
    dataset = load(write(tmp_path, "\n".join([header, *rows]) + "\n"))
    np.testing.assert_array_equal(dataset.X, X)
    assert dataset.feature_names[-1] == "f2999" and dataset.labels.tolist() == [i % 2 for i in range(20)]
