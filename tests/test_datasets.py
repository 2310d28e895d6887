"""Dataset loaders: real copies in ../shared/data and small files written here in the official formats."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from hashbench.datasets import cifar10 as cifar10_mod
from hashbench.datasets import describe_datasets, list_datasets, load_dataset
from hashbench.datasets import imagefolder as imagefolder_mod
from hashbench.datasets.cifar10 import CLASSES
from hashbench.datasets.mnist import read_idx
from hashbench.errors import DatasetNotFound, InvalidInput, UnknownName


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Caches written by loaders go to a temporary folder, never the user's."""
    monkeypatch.setenv("HASHBENCH_CACHE", str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------- names
def test_unknown_name_lists_the_known_datasets():
    with pytest.raises(UnknownName) as e:
        load_dataset("cifar100")
    for name in ("cifar10", "mnist", "nuswide21", "features:FILE"):
        assert name in str(e.value)


def test_every_listed_dataset_has_a_description():
    assert set(list_datasets()) == set(describe_datasets())
    assert all(describe_datasets().values())


# ---------------------------------------------------------------------------------------- digits
def test_digits_is_embedded_and_scaled_to_uint8():
    ds = load_dataset("digits")
    X = ds.images.load(np.arange(len(ds)))
    assert X.shape == (1797, 8, 8, 1) and X.dtype == np.uint8
    assert X.max() == 255  # 16 -> 255
    assert np.bincount(ds.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert ds.protocol == "digits" and ds.checksum


# ---------------------------------------------------------------------------------------- MNIST
def _idx_bytes(a: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(np.uint8).tobytes()


def _write_mnist(folder, part, images, labels, gz):
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }[part]
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in zip(stems, (images, labels), strict=True):
        if gz:
            with gzip.open(folder / (stem + ".gz"), "wb") as f:
                f.write(_idx_bytes(arr))
        else:
            (folder / stem).write_bytes(_idx_bytes(arr))


def test_mnist_real_test_set(shared_data):
    ds = load_dataset("mnist", shared_data / "mnist")
    X = ds.images.load(np.arange(len(ds)))
    assert X.shape == (10000, 28, 28, 1) and X.dtype == np.uint8
    # the official test set's class counts (LeCun's page); its first digit is a 7
    assert np.bincount(ds.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.labels[0] == 7
    assert ds.protocol == "mnist" and ds.extra["parts"] == ["test"]


def test_mnist_train_then_test_from_raw_and_gz_files(tmp_path):
    rng = np.random.default_rng(0)
    tr, te = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    _write_mnist(tmp_path, "train", tr, np.array([1, 2, 3, 4, 5]), gz=False)
    _write_mnist(tmp_path, "test", te, np.array([9, 8, 7]), gz=True)
    ds = load_dataset("mnist", tmp_path)
    assert ds.labels.tolist() == [1, 2, 3, 4, 5, 9, 8, 7]  # the pool is train then test
    np.testing.assert_array_equal(ds.images.load([0, 5])[..., 0], np.stack([tr[0], te[0]]))


def test_mnist_reads_torchvision_layout_and_gz_equals_raw(tmp_path):
    imgs, labs = np.arange(2 * 28 * 28).reshape(2, 28, 28) % 256, np.array([3, 4])
    _write_mnist(tmp_path / "a" / "MNIST" / "raw", "test", imgs, labs, gz=False)
    _write_mnist(tmp_path / "b", "test", imgs, labs, gz=True)
    a, b = load_dataset("mnist", tmp_path / "a"), load_dataset("mnist", tmp_path / "b")
    # the checksum is of the content, so the same data in either container agrees
    assert a.checksum == b.checksum and a.labels.tolist() == [3, 4]


def test_idx_truncated_file_is_invalid_and_named(tmp_path):
    p = tmp_path / "t10k-images-idx3-ubyte"
    p.write_bytes(_idx_bytes(np.zeros((2, 28, 28)))[:-10])
    with pytest.raises(InvalidInput, match="t10k-images-idx3-ubyte.*truncated"):
        read_idx(p)


def test_idx_bad_magic_and_corrupt_gz_are_invalid(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(InvalidInput, match="magic"):
        read_idx(p)
    g = tmp_path / "x-idx3-ubyte.gz"
    g.write_bytes(gzip.compress(_idx_bytes(np.zeros((1, 2, 2))))[:-12])
    with pytest.raises(InvalidInput, match="x-idx3-ubyte.gz"):
        read_idx(g)


def test_mnist_missing_names_the_files_and_how_to_get_them(tmp_path):
    with pytest.raises(DatasetNotFound) as e:
        load_dataset("mnist", tmp_path)
    assert "t10k-images-idx3-ubyte" in str(e.value) and "--data-root" in str(e.value)


def test_mnist_half_a_pair_is_not_found(tmp_path):
    _write_mnist(tmp_path, "test", np.zeros((1, 28, 28)), np.array([0]), gz=False)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DatasetNotFound, match="t10k-labels-idx1-ubyte"):
        load_dataset("mnist", tmp_path)


# ---------------------------------------------------------------------------------------- CIFAR-10 pickles
def _write_cifar_batches(root, sizes=(2, 2, 2, 2, 2, 3)):
    """Tiny batches in the official format: dict with 'data' (n, 3072) uint8 (R, G, B planes,
    row-major), 'labels', 'batch_label', 'filenames'; batches.meta with 'label_names'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    all_data, all_labels = [], []
    for name, n in zip(names, sizes, strict=True):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump(
                {"batch_label": name, "labels": labels, "data": data, "filenames": [f"img{i}.png" for i in range(n)]},
                f,
                protocol=2,
            )
        all_data.append(data)
        all_labels += labels
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CLASSES), "num_cases_per_batch": 2, "num_vis": 3072}, f, protocol=2)
    return np.concatenate(all_data), np.array(all_labels)


@pytest.fixture
def trust_tiny_batches(monkeypatch):
    """Accept the md5 of the tiny batches a test writes as if they were the official files."""

    def trust(root):
        folder = root / "cifar-10-batches-py"
        md5 = {n: cifar10_mod._md5(folder / n) for n in cifar10_mod.OFFICIAL_MD5}
        monkeypatch.setattr(cifar10_mod, "OFFICIAL_MD5", md5)

    return trust


def test_official_md5_list_is_torchvisions():
    from torchvision.datasets import CIFAR10

    theirs = dict(CIFAR10.train_list + CIFAR10.test_list)
    theirs[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    assert cifar10_mod.OFFICIAL_MD5 == theirs


def test_cifar10_pickles_in_official_order_and_layout(tmp_path, trust_tiny_batches):
    data, labels = _write_cifar_batches(tmp_path)
    trust_tiny_batches(tmp_path)
    ds = load_dataset("cifar10", tmp_path)
    X = ds.images.load(np.arange(len(ds)))
    assert X.shape == (13, 32, 32, 3) and ds.labels.tolist() == labels.tolist()
    # pixel (r, c) of channel ch is byte ch * 1024 + r * 32 + c of the row
    assert X[12, 5, 7, 2] == data[12, 2 * 1024 + 5 * 32 + 7]
    assert ds.extra["format"] == "pickles" and ds.extra["n_train"] == 10
    assert ds.extra["official_md5"] is True and "md5 verified" in ds.source


def test_cifar10_accepts_the_batches_folder_itself(tmp_path, trust_tiny_batches):
    _write_cifar_batches(tmp_path)
    trust_tiny_batches(tmp_path)
    assert len(load_dataset("cifar10", tmp_path / "cifar-10-batches-py")) == 13


def test_cifar10_unofficial_pickles_are_refused_unopened(tmp_path, monkeypatch):
    _write_cifar_batches(tmp_path)
    monkeypatch.setattr(cifar10_mod, "_unpickle", lambda p: pytest.fail(f"unpickled {p}"))
    with pytest.raises(InvalidInput, match="data_batch_1 is not the official one") as e:
        load_dataset("cifar10", tmp_path)
    assert "official archive" in str(e.value) and "train/<class>/*.jpg" in str(e.value)


def test_cifar10_corrupt_pickle_is_named(tmp_path, trust_tiny_batches):
    _write_cifar_batches(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02}q\x00(garbage")
    trust_tiny_batches(tmp_path)
    with pytest.raises(InvalidInput, match="data_batch_3"):
        load_dataset("cifar10", tmp_path)


def test_cifar10_missing_names_folders_and_remedies(tmp_path):
    with pytest.raises(DatasetNotFound) as e:
        load_dataset("cifar10", tmp_path)
    msg = str(e.value)
    assert "cifar-10-batches-py" in msg and "--download" in msg and "train/<class>/*.jpg" in msg
    assert "shared" not in msg


# ---------------------------------------------------------------------------------------- CIFAR-10 JPEG
def _small_jpeg_copy(src, dest, per_class=(2, 1)):
    """A CIFAR-10 JPEG layout with the first files of each class (numbers 0..k-1) of the real copy."""
    for split, k in zip(("train", "test"), per_class, strict=True):
        for cls in CLASSES:
            (dest / split / cls).mkdir(parents=True)
            for i in range(k):
                shutil.copy(src / split / cls / f"{i:04d}.jpg", dest / split / cls / f"{i:04d}.jpg")


def test_cifar10_jpeg_folder_order_labels_and_cache(cifar10_jpeg_root, tmp_path, monkeypatch):
    _small_jpeg_copy(cifar10_jpeg_root, tmp_path / "c")
    ds = load_dataset("cifar10", tmp_path / "c")
    X = ds.images.load(np.arange(len(ds)))
    assert X.shape == (30, 32, 32, 3) and X.dtype == np.uint8
    # train then test; classes in the official order; files by number
    assert ds.labels.tolist() == [c for c in range(10) for _ in range(2)] + list(range(10))
    assert ds.extra["paths"][1].endswith("train/airplane/0001.jpg")
    expected = np.asarray(Image.open(tmp_path / "c" / "test" / "truck" / "0000.jpg").convert("RGB"))
    np.testing.assert_array_equal(X[-1], expected)
    assert ds.extra["format"] == "jpeg" and "JPEG" in ds.source
    # the second load is served from the decoded-array cache, without decoding
    monkeypatch.setattr("hashbench.datasets.cifar10.decode_many", lambda *a, **k: pytest.fail("decoded again"))
    again = load_dataset("cifar10", tmp_path / "c")
    np.testing.assert_array_equal(again.images.load(np.arange(30)), X)
    assert again.checksum == ds.checksum


def test_cifar10_jpeg_missing_class_folder(cifar10_jpeg_root, tmp_path):
    _small_jpeg_copy(cifar10_jpeg_root, tmp_path / "c", per_class=(1, 1))
    shutil.rmtree(tmp_path / "c" / "test" / "cat")
    with pytest.raises(DatasetNotFound, match="test/cat"):
        load_dataset("cifar10", tmp_path / "c")


@pytest.mark.slow
def test_cifar10_full_jpeg_copy(cifar10_jpeg_root, monkeypatch):
    from conftest import test_cache_root

    monkeypatch.setenv("HASHBENCH_CACHE", str(test_cache_root() / "cache"))  # keep the decoded array
    ds = load_dataset("cifar10", cifar10_jpeg_root)
    assert len(ds) == 60000 and ds.extra["n_train"] == 50000
    assert np.bincount(ds.labels).tolist() == [6000] * 10
    assert ds.images.load([0, 59999]).shape == (2, 32, 32, 3)


# ---------------------------------------------------------------------------------------- image folders
def test_imagefolder_classes_sorted_files_in_natural_order(tmp_path):
    for cls, names in {"b_dogs": ["10.png", "2.png"], "a_cats": ["1.png"]}.items():
        (tmp_path / cls).mkdir()
        for i, n in enumerate(names):
            Image.fromarray(np.full((6, 5), 40 * i + 10, np.uint8), "L").save(tmp_path / cls / n)
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_cats" / "notes.txt").write_text("not an image")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.extra["classes"] == ["a_cats", "b_dogs"] and ds.labels.tolist() == [0, 1, 1]
    assert [os.path.basename(p) for p in ds.extra["paths"]] == ["1.png", "2.png", "10.png"]
    X = ds.images.load([2, 1])
    assert X.shape == (2, 6, 5, 1)  # grey images stay one channel
    assert X[:, 0, 0, 0].tolist() == [10, 50]


def test_imagefolder_missing_and_corrupt(tmp_path):
    with pytest.raises(DatasetNotFound):
        load_dataset(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "c").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "c" / "0.png")
    (tmp_path / "c" / "1.png").write_bytes(b"not a png")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    with pytest.raises(InvalidInput, match="1.png"):
        ds.images.load([1])


def test_natural_key_orders_numbers_by_value():
    assert sorted(["img10.jpg", "img2.jpg", "img1.jpg"], key=imagefolder_mod.natural_key) == [
        "img1.jpg",
        "img2.jpg",
        "img10.jpg",
    ]


# ---------------------------------------------------------------------------------------- NUS-WIDE, list files
def test_nuswide21_real_lists_are_labels_only(shared_data):
    ds = load_dataset("nuswide21", shared_data / "lists" / "nuswide_21")
    assert ds.labels.shape == (12600, 21) and ds.labels.dtype == np.uint8
    assert ds.images is None and "labels only" in ds.source
    assert len(ds.extra["list_rows"]["train"]) == 10500 and len(ds.extra["list_rows"]["test"]) == 2100
    assert ds.protocol == "nuswide21" and ds.given_split is None
    assert (ds.labels.sum(1) > 0).all()  # every listed image carries one of the 21 concepts


def _write_list(path, rows):
    path.write_text("".join(f"{p} {' '.join(map(str, lab))}\n" for p, lab in rows))


def test_nuswide21_loads_images_lazily_at_the_chosen_size(tmp_path):
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(3):
        Image.fromarray(np.full((10, 14, 3), 60 * i, np.uint8)).save(tmp_path / "images" / f"{i}.png")
        rows.append((f"images/{i}.png", np.eye(21, dtype=int)[i]))
    _write_list(tmp_path / "train.txt", rows[:2])
    _write_list(tmp_path / "test.txt", rows[2:])
    ds = load_dataset("nuswide21", tmp_path, image_size=16)
    X = ds.images.load([2, 0])
    assert X.shape == (2, 16, 16, 3) and X[0, 0, 0, 0] == 120 and X[1, 0, 0, 0] == 0
    os.remove(tmp_path / "images" / "1.png")
    with pytest.raises(DatasetNotFound, match="1 of 3"):
        load_dataset("nuswide21", tmp_path)


def test_nuswide21_wrong_label_width_and_missing_lists(tmp_path):
    with pytest.raises(DatasetNotFound, match="train.txt"):
        load_dataset("nuswide21", tmp_path)
    _write_list(tmp_path / "train.txt", [("a.jpg", [0, 1])])
    _write_list(tmp_path / "test.txt", [("b.jpg", [1, 0])])
    with pytest.raises(InvalidInput, match="21"):
        load_dataset("nuswide21", tmp_path)


def test_listfile_replays_mirflickr_split(shared_data):
    ds = load_dataset(f"listfile:{shared_data / 'lists' / 'mirflickr'}")
    s = ds.given_split
    assert (len(s["query"]), len(s["train"]), len(s["database"])) == (1000, 4000, 20000)
    assert len(ds) == 25000 and ds.labels.shape == (25000, 38)  # the three lists are disjoint there
    assert not set(s["query"]) & set(s["database"])
    assert 0.01 < (ds.labels.sum(1) == 0).mean() < 0.03  # the README's "about 2% have no label"


def test_listfile_deduplicates_by_path(tmp_path):
    _write_list(tmp_path / "database.txt", [("a.jpg", [1]), ("b.jpg", [0]), ("c.jpg", [2])])
    _write_list(tmp_path / "train.txt", [("./b.jpg", [0]), ("c.jpg", [2]), ("c.jpg", [2])])
    _write_list(tmp_path / "test.txt", [("d.jpg", [1])])
    ds = load_dataset(f"listfile:{tmp_path}")
    # one pool row per path, database rows first; train rows point into the database rows
    assert ds.extra["paths"] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert ds.labels.tolist() == [1, 0, 2, 1]  # one label column: class ids
    assert ds.given_split["train"].tolist() == [1, 2] and ds.given_split["query"].tolist() == [3]
    assert ds.extra["repeats_dropped"]["train"] == 1


def test_listfile_conflicting_labels_and_missing_list(tmp_path):
    _write_list(tmp_path / "database.txt", [("a.jpg", [1, 0])])
    _write_list(tmp_path / "train.txt", [("a.jpg", [0, 1])])
    with pytest.raises(DatasetNotFound, match="test.txt"):
        load_dataset(f"listfile:{tmp_path}")
    _write_list(tmp_path / "test.txt", [("b.jpg", [1, 1])])
    with pytest.raises(InvalidInput, match="a.jpg"):
        load_dataset(f"listfile:{tmp_path}")


def test_listfile_ragged_and_non_integer_rows(tmp_path):
    for name in ("database", "train"):
        _write_list(tmp_path / f"{name}.txt", [("a.jpg", [1, 0])])
    (tmp_path / "test.txt").write_text("b.jpg 1 0\nc.jpg 1\n")
    with pytest.raises(InvalidInput, match="test.txt:2"):
        load_dataset(f"listfile:{tmp_path}")
    (tmp_path / "test.txt").write_text("b.jpg 1 x\n")
    with pytest.raises(InvalidInput, match="non-integer"):
        load_dataset(f"listfile:{tmp_path}")


# ---------------------------------------------------------------------------------------- feature files
X4 = np.arange(12, dtype=np.float64).reshape(4, 3)
Y4 = np.array([0, 1, 1, 2])


@pytest.mark.parametrize("xkey,ykey", [("X", "y"), ("features", "labels")])
def test_features_npz(tmp_path, xkey, ykey):
    np.savez(tmp_path / "f.npz", **{xkey: X4, ykey: Y4})
    ds = load_dataset(f"features:{tmp_path / 'f.npz'}")
    assert ds.features.dtype == np.float32 and ds.images is None
    np.testing.assert_array_equal(ds.features, X4)
    assert ds.labels.tolist() == Y4.tolist()


def test_features_npy_pair(tmp_path):
    np.save(tmp_path / "gist.npy", X4)
    with pytest.raises(DatasetNotFound, match="gist_labels.npy"):
        load_dataset(f"features:{tmp_path / 'gist.npy'}")
    np.save(tmp_path / "gist_labels.npy", Y4)
    assert load_dataset(f"features:{tmp_path / 'gist.npy'}").labels.tolist() == Y4.tolist()


def test_features_mat_v5_column_vector_labels(tmp_path):
    scipy.io.savemat(tmp_path / "f.mat", {"X": X4, "y": Y4.reshape(-1, 1).astype(float)})
    ds = load_dataset(f"features:{tmp_path / 'f.mat'}")
    np.testing.assert_array_equal(ds.features, X4)
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == Y4.tolist()


def test_features_mat_v73_is_transposed_back(tmp_path):
    # MATLAB v7.3 writes column-major HDF5: an n x d matrix appears to h5py as d x n
    with h5py.File(tmp_path / "f.mat", "w") as f:
        f["X"] = X4.T
        f["y"] = Y4.reshape(1, -1).astype(float)
    ds = load_dataset(f"features:{tmp_path / 'f.mat'}")
    np.testing.assert_array_equal(ds.features, X4)
    assert ds.labels.tolist() == Y4.tolist() and ds.extra["format"] == "mat-v7.3"


def test_features_multilabel_matrix(tmp_path):
    Y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    np.savez(tmp_path / "f.npz", X=X4, y=Y)
    ds = load_dataset(f"features:{tmp_path / 'f.npz'}")
    assert ds.multilabel and ds.labels.dtype == np.uint8


def test_features_nan_and_bad_shapes_are_invalid(tmp_path):
    bad = X4.copy()
    bad[2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=bad, y=Y4)
    with pytest.raises(InvalidInput, match="NaN"):
        load_dataset(f"features:{tmp_path / 'nan.npz'}")
    np.savez(tmp_path / "short.npz", X=X4, y=Y4[:3])
    with pytest.raises(InvalidInput, match="4 feature rows"):
        load_dataset(f"features:{tmp_path / 'short.npz'}")
    np.savez(tmp_path / "flat.npz", X=X4.ravel(), y=Y4)
    with pytest.raises(InvalidInput, match="2-D"):
        load_dataset(f"features:{tmp_path / 'flat.npz'}")
    np.savez(tmp_path / "nolabels.npz", X=X4)
    with pytest.raises(InvalidInput, match="label"):
        load_dataset(f"features:{tmp_path / 'nolabels.npz'}")


def test_features_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DatasetNotFound, match="nope.npz"):
        load_dataset(f"features:{tmp_path / 'nope.npz'}")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InvalidInput, match="bad.npz"):
        load_dataset(f"features:{tmp_path / 'bad.npz'}")
    with pytest.raises(InvalidInput, match="unsupported"):
        load_dataset(f"features:{tmp_path / 'f.csv'}")


# ---------------------------------------------------------------------------------------- synthetic
def test_synthetic_is_deterministic_and_parametrised():
    a, b = load_dataset("synthetic:n=60,d=5,classes=3"), load_dataset("synthetic:n=60,d=5,classes=3")
    np.testing.assert_array_equal(a.features, b.features)
    assert a.features.shape == (60, 5) and np.bincount(a.labels).tolist() == [20, 20, 20]
    assert a.images.load(np.arange(60)).shape == (60, 8, 8, 1) and a.checksum == b.checksum
    assert load_dataset("synthetic:seed=1").checksum != load_dataset("synthetic").checksum


def test_synthetic_clusters_are_separable():
    ds = load_dataset("synthetic")
    centres = np.stack([ds.features[ds.labels == c].mean(0) for c in range(10)])
    nearest = np.argmin(((ds.features[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == ds.labels).mean() > 0.95  # sep=3 in 32 dims: clusters barely overlap


def test_synthetic_bad_option():
    with pytest.raises(InvalidInput, match="bogus"):
        load_dataset("synthetic:bogus=1")
