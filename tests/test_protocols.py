"""Protocols are frozen: their draws, sizes and checksums are specifications."""

import numpy as np
import pytest

from hashbench.datasets.protocols import get_protocol, given_split, make_split, split_checksum
from hashbench.errors import InvalidInput, UnknownName


def cifar_like_labels():
    return np.repeat(np.arange(10), 6000)


def test_cifar10_sizes_and_disjointness():
    """1,000 queries (100/class), 5,000 train (500/class) inside the 59,000-item database."""
    labels = cifar_like_labels()
    s = make_split("cifar10", labels, seed=0)
    assert len(s["query"]) == 1000 and len(s["train"]) == 5000 and len(s["database"]) == 59000
    assert np.bincount(labels[s["query"]]).tolist() == [100] * 10
    assert np.bincount(labels[s["train"]]).tolist() == [500] * 10
    assert not np.intersect1d(s["query"], s["database"]).size
    assert np.isin(s["train"], s["database"]).all()


def test_cifar10_54k_excludes_train_from_database():
    s = make_split("cifar10-54k", cifar_like_labels(), seed=0)
    assert len(s["database"]) == 54000
    assert not np.intersect1d(s["train"], s["database"]).size


def test_seeded_and_frozen():
    """Same seed, same split (bit for bit); another seed, another split; the checksum tells them apart."""
    labels = cifar_like_labels()
    a, b, c = (make_split("cifar10", labels, seed=s) for s in (0, 0, 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert split_checksum(a) == split_checksum(b) != split_checksum(c)


def test_frozen_draw_algorithm():
    """The draw is the documented one: per class, a seeded permutation; first queries, then train."""
    labels = np.repeat(np.arange(3), 100)
    s = make_split(get_protocol("digits"), labels, seed=7)
    rng = np.random.default_rng(7)
    q, t = [], []
    for c in range(3):
        perm = rng.permutation(np.flatnonzero(labels == c))
        q += list(perm[:10])
        t += list(perm[10:60])
    assert s["query"].tolist() == sorted(q) and s["train"].tolist() == sorted(t)


def test_multilabel_per_concept_draw():
    """nuswide21: 100 queries and 500 train per concept, no item drawn twice, MAP@5000."""
    rng = np.random.default_rng(0)
    labels = (rng.random((30000, 21)) < 0.12).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    s = make_split("nuswide21", labels, seed=0)
    assert len(s["query"]) == 2100 and len(s["train"]) == 10500
    assert len(np.unique(np.concatenate([s["query"], s["train"]]))) == 12600
    assert len(s["database"]) == 30000 - 2100
    assert get_protocol("nuswide21").topk == 5000


def test_too_small_pool_is_a_clear_error():
    with pytest.raises(InvalidInput, match="class 1 has only"):
        make_split("cifar10", np.array([0] * 700 + [1] * 10), seed=0)


def test_unknown_protocol():
    with pytest.raises(UnknownName, match="known protocols"):
        get_protocol("cifar100")


def test_given_split_validated():
    with pytest.raises(InvalidInput, match="outside"):
        given_split({"query": [0], "train": [1], "database": [5]}, n=3)
