"""Named, frozen evaluation protocols: how query / train / database are drawn, and the metric.

A protocol's name fixes the pool, the draw, the role of the seed and the metric's cut-off, so two
numbers are comparable exactly when protocol name and split checksum match (PROTOCOLS.md).

The draw, frozen (changing it changes every checksum, so it never changes silently):

- single-label pools: for each class in increasing label order, the class's indices (ascending)
  are permuted by ``numpy.random.default_rng(seed)``; the first ``n_query`` become queries, the next
  ``n_train`` training items;
- multi-label pools: for each concept in column order, ``n_query`` queries are drawn without
  replacement among the items carrying that concept and not yet drawn; then, likewise, ``n_train``
  training items per concept among the non-query items not yet drawn;
- the database is every non-query item (training items included), except for ``cifar10-54k``,
  whose database excludes the training items too.

This module is pure: arrays in, index arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..digests import bytes_digest
from ..errors import InvalidInput, UnknownName


@dataclass(frozen=True)
class Protocol:
    """A frozen split rule and its metric.

    ``n_query`` / ``n_train`` are per class (per concept for multi-label pools) for stratified
    protocols; for ``generic`` they are totals drawn uniformly at random.
    """

    name: str
    n_query: int
    n_train: int
    train_in_database: bool = True
    topk: int | None = None
    stratified: bool = True
    description: str = ""


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol(
            "cifar10",
            100,
            500,
            description="60,000 pool; 1,000 queries (100/class); 5,000 train (500/class) "
            "from the other 59,000, which form the database; MAP over the database",
        ),
        Protocol(
            "cifar10-54k",
            100,
            500,
            train_in_database=False,
            description="as cifar10, but the database is the 54,000 items neither query nor train",
        ),
        Protocol(
            "nuswide21",
            100,
            500,
            topk=5000,
            description="images with one of the 21 most frequent concepts; 2,100 queries (100/concept); "
            "10,500 train (500/concept) from the database (the rest); MAP@5000",
        ),
        Protocol(
            "mnist",
            100,
            500,
            description="70,000 pool (or the 10,000 test images when only those are "
            "present); 1,000 queries (100/class); 5,000 train (500/class) from the database (the rest); MAP",
        ),
        Protocol(
            "digits",
            10,
            50,
            description="scikit-learn's 1,797 digits; 100 queries (10/class); "
            "500 train (50/class) from the database (the other 1,697); MAP",
        ),
        Protocol(
            "generic",
            1000,
            5000,
            stratified=False,
            description="any pool: min(1,000, n/10) queries at random; min(5,000, half the rest) train "
            "from the database (the rest); MAP",
        ),
    ]
}
GIVEN = "given"


def get_protocol(name: str) -> Protocol:
    """The protocol named ``name``. Raises UnknownName listing the known ones."""
    if name not in PROTOCOLS:
        known = ", ".join([*PROTOCOLS, GIVEN])
        raise UnknownName(f"unknown protocol {name!r}; known protocols: {known}")
    return PROTOCOLS[name]


def make_split(protocol: Protocol | str, labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Draw ``{"query", "train", "database"}`` index arrays (sorted int64) under a protocol.

    Raises InvalidInput when the pool is too small for the protocol (a class with fewer items
    than queries + training items, say).
    """
    p = get_protocol(protocol) if isinstance(protocol, str) else protocol
    labels = np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    if not p.stratified:
        n_query = min(p.n_query, n // 10)
        n_train = min(p.n_train, (n - n_query) // 2)
        if n_query < 1 or n_train < 2:
            raise InvalidInput(f"protocol {p.name!r} needs at least 20 items, the pool has {n}")
        perm = rng.permutation(n)
        query, train = perm[:n_query], perm[n_query : n_query + n_train]
    elif labels.ndim == 1:
        query_parts, train_parts = [], []
        for c in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == c))
            if len(members) < p.n_query + p.n_train:
                raise InvalidInput(
                    f"protocol {p.name!r} draws {p.n_query} queries and {p.n_train} training items per class, "
                    f"but class {c} has only {len(members)} items; use --protocol generic for a smaller pool"
                )
            query_parts.append(members[: p.n_query])
            train_parts.append(members[p.n_query : p.n_query + p.n_train])
        query, train = np.concatenate(query_parts), np.concatenate(train_parts)
    elif labels.ndim == 2:
        taken = np.zeros(n, dtype=bool)
        query = _draw_per_concept(labels, p.n_query, taken, rng, p.name, "queries")
        train = _draw_per_concept(labels, p.n_train, taken, rng, p.name, "training items")
    else:
        raise InvalidInput(f"labels must be 1-D class ids or 2-D multi-hot, got shape {labels.shape}")
    in_db = np.ones(n, dtype=bool)
    in_db[query] = False
    if not p.train_in_database:
        in_db[train] = False
    return {
        "query": np.sort(query).astype(np.int64),
        "train": np.sort(train).astype(np.int64),
        "database": np.flatnonzero(in_db).astype(np.int64),
    }


def _draw_per_concept(labels, per_concept, taken, rng, name, what) -> np.ndarray:
    drawn = []
    for c in range(labels.shape[1]):
        candidates = np.flatnonzero((labels[:, c] > 0) & ~taken)
        if len(candidates) < per_concept:
            raise InvalidInput(
                f"protocol {name!r} draws {per_concept} {what} per concept, but concept {c} has only "
                f"{len(candidates)} undrawn items; use --protocol generic for a smaller pool"
            )
        pick = rng.choice(candidates, size=per_concept, replace=False)
        taken[pick] = True
        drawn.append(pick)
    return np.concatenate(drawn)


def given_split(split: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Validate a split that a source fixes (replayed list files): indices in range, query disjoint from database."""
    out = {}
    for part in ("query", "train", "database"):
        if part not in split:
            raise InvalidInput(f"the given split lacks its {part!r} part (train.txt / test.txt / database.txt)")
        idx = np.asarray(split[part], dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InvalidInput(f"the given split's {part!r} part has indices outside 0..{n - 1}")
        if not idx.size and part != "train":
            raise InvalidInput(f"the given split's {part!r} part is empty")
        out[part] = idx
    if np.intersect1d(out["query"], out["database"]).size:
        raise InvalidInput(
            "the given split's queries also appear in its database; a query would retrieve itself. "
            "Fix the lists (test.txt and database.txt must not share images)"
        )
    return out


def split_checksum(split: dict[str, np.ndarray]) -> str:
    """A short sha256 of the three index arrays: equal checksums mean the same split."""
    chunks = []
    for part in ("query", "train", "database"):
        chunks += [part.encode(), np.ascontiguousarray(split[part], dtype=np.int64).tobytes()]
    return bytes_digest(*chunks)
