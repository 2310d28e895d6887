"""Specification tests of hashbench.search: faiss k-NN and radius search agree with brute force."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from hashbench.bits import pack, unpack
from hashbench.errors import InvalidInput
from hashbench.search import knn, knn_bruteforce, radius_search, time_queries


def hamming(q, db):
    return (q[:, None, :] != db[None, :, :]).sum(-1)


@pytest.mark.parametrize("n_bits", [1, 7, 8, 12, 64, 100])
def test_pack_unpack_round_trip_and_padding(n_bits):
    """search packs with hashbench.bits.pack: uint8 rows, zero padding, unpack inverts it."""
    rng = np.random.default_rng(n_bits)
    codes = rng.random((9, n_bits)) < 0.5
    packed = pack(codes)
    assert packed.dtype == np.uint8 and packed.shape == (9, -(-n_bits // 8))
    assert np.array_equal(unpack(packed, n_bits), codes)
    # the padding bits are zero, so the byte popcount is the number of set bits
    assert np.array_equal(np.unpackbits(packed, axis=1).sum(1), codes.sum(1))


def test_bit_order_is_faiss_order():
    """faiss packs bit i into bit (i mod 8) of byte i // 8: code 1,0,0,0,0,0,0,0,0,1 -> bytes 1, 2."""
    code = np.zeros((1, 10), bool)
    code[0, [0, 9]] = True
    assert pack(code).tolist() == [[1, 2]]
    # and faiss's own packing of sign bits (x >= 0 -> 1) gives the same bytes
    rng = np.random.default_rng(2)
    for n_bits in (8, 64, 136):
        codes = rng.random((5, n_bits)) < 0.5
        x = np.ascontiguousarray(np.where(codes, 1.0, -1.0).astype(np.float32))
        ref = np.zeros((5, n_bits // 8), np.uint8)
        faiss.fvecs2bitvecs(faiss.swig_ptr(x), faiss.swig_ptr(ref), n_bits, 5)
        assert np.array_equal(pack(codes), ref)


def test_packed_and_bool_inputs_give_the_same_search():
    """A 12-bit code padded to 2 bytes: the padding bits never change a distance."""
    rng = np.random.default_rng(4)
    db, q = rng.random((200, 12)) < 0.5, rng.random((7, 12)) < 0.5
    d_bool, _ = knn(db, q, 15)
    d_packed, _ = knn(pack(db), pack(q), 15)
    assert np.array_equal(d_bool, d_packed)
    assert np.array_equal(d_bool, np.sort(hamming(q, db), 1)[:, :15])
    with pytest.raises(InvalidInput, match="bool"):
        knn(np.full((3, 12), 0.5), q, 2)


@pytest.mark.parametrize("n_bits", [12, 64, 100])
def test_knn_distances_equal_brute_force(n_bits):
    rng = np.random.default_rng(0)
    db, q = rng.random((500, n_bits)) < 0.5, rng.random((20, n_bits)) < 0.5
    dist, idx = knn(db, q, 10)
    ref_d, ref_i = knn_bruteforce(db, q, 10)
    true = hamming(q, db)
    assert np.array_equal(dist, ref_d)
    assert np.array_equal(np.take_along_axis(true, idx, 1), dist)  # faiss's distances are the true ones
    assert np.array_equal(np.sort(true, 1)[:, :10], ref_d)
    # where the k-th distance is not tied with the (k+1)-th, the neighbour sets are determined
    sorted_true = np.sort(true, 1)
    free = sorted_true[:, 9] < sorted_true[:, 10]
    assert free.any()
    for i in np.flatnonzero(free):
        assert set(idx[i]) == set(ref_i[i])


def test_knn_bruteforce_breaks_ties_by_index_and_clamps_k():
    db = np.array([[1, 1], [0, 0], [1, 0], [0, 0]], bool)
    q = np.array([[0, 0]], bool)
    d, i = knn_bruteforce(db, q, 3)
    assert d.tolist() == [[0, 0, 1]] and i.tolist() == [[1, 3, 2]]
    d, i = knn(db, q, 10)  # k > nd returns every item
    assert d.shape == (1, 4) and sorted(d[0].tolist()) == [0, 0, 1, 2]


@pytest.mark.parametrize("r", [0, 1, 2, 5])
def test_radius_search_keeps_distance_at_most_r(r):
    """d <= r, not faiss's strict d < r: the items exactly at distance r are included."""
    rng = np.random.default_rng(r)
    db, q = rng.random((300, 10)) < 0.5, rng.random((6, 10)) < 0.5
    lims, dist, idx = radius_search(db, q, r)
    true = hamming(q, db)
    for i in range(6):
        expect = np.flatnonzero(true[i] <= r)
        got = idx[lims[i] : lims[i + 1]]
        assert sorted(got.tolist()) == expect.tolist()
        assert np.array_equal(dist[lims[i] : lims[i + 1]], true[i, got])
        assert np.all(np.diff(dist[lims[i] : lims[i + 1]]) >= 0)


def test_time_queries_is_positive_and_inputs_are_checked():
    rng = np.random.default_rng(1)
    db, q = rng.random((1000, 32)) < 0.5, rng.random((10, 32)) < 0.5
    assert time_queries(db, q, k=5, repeats=1) > 0
    with pytest.raises(InvalidInput, match="bytes"):
        knn(db, rng.random((2, 40)) < 0.5, 3)
    with pytest.raises(InvalidInput, match="k must"):
        knn(db, q, 0)
    with pytest.raises(InvalidInput, match="radius"):
        radius_search(db, q, -1)
