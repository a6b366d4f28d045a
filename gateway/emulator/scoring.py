"""Deterministic embeddings and softmax scoring, as Amazon Personalize documents it.

* Every user, item, action and context gets a small vector from a keyed BLAKE2b hash,
  so the same inputs give the same scores in every process and across restarts.
* Item/action vectors are computed once at start, pre-multiplied by the scale so a
  logit is a plain dot product.
* ``GetRecommendations``: a softmax over the whole catalog (AWS: the scores of all items
  sum to 1); filters then remove items without changing the others' scores.
* ``GetPersonalizedRanking``: a softmax over the (known, unfiltered) input items only,
  from the very same logits, so ranking a subset equals renormalising a ranking of any
  superset (what request merging in the gateway relies on).

The expensive part, a full-catalog ranking for one query vector, is cached in a bounded
LRU keyed by what determines it (model salt, user or item, context).
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from operator import mul
from typing import Generic, TypeVar

from gateway.emulator.catalog import Entities

__all__ = ["LRU", "RankedList", "Scorer", "hash_vector", "softmax"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def hash_vector(seed: str, kind: str, key: str, dim: int) -> tuple[float, ...]:
    """A vector in [-1, 1]^dim from BLAKE2b (2 bytes per dimension, dim <= 32)."""
    digest = hashlib.blake2b(f"{seed}\x1f{kind}\x1f{key}".encode(), digest_size=2 * dim).digest()
    return tuple(
        int.from_bytes(digest[2 * i : 2 * i + 2], "little") / 32767.5 - 1.0 for i in range(dim)
    )


class LRU(Generic[K, V]):
    """A bounded least-recently-used map (single event loop, so no locking)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._size:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class RankedList:
    """One query's full-catalog ranking: logits, softmax scores, order, JSON fragments."""

    __slots__ = ("_fragments", "_id_key", "_joined", "_json_ids", "logits", "order", "scores")

    def __init__(
        self, json_ids: Sequence[str], logits: list[float], exclude: int | None, id_key: str
    ) -> None:
        self._json_ids = json_ids
        top = max(logits, default=0.0)
        exps = [math.exp(x - top) for x in logits]
        if exclude is not None:
            exps[exclude] = 0.0
        total = math.fsum(exps) or 1.0  # an empty catalog (or only the excluded item)
        scores = [e / total for e in exps]
        order = sorted(range(len(logits)), key=scores.__getitem__, reverse=True)
        if exclude is not None:
            order.remove(exclude)
        # Typed arrays: a cached entry is ~40 KB per 1000 items instead of ~100 KB.
        self.logits = array("d", logits)
        self.scores = array("d", scores)
        self.order = array("i", order)
        self._id_key = id_key
        # Rendered lazily: most requests only ever look at the first few dozen.
        self._fragments: list[str | None] = [None] * len(order)
        self._joined: dict[int, str] = {}  # unfiltered top-n JSON, by n

    def fragment(self, pos: int) -> str:
        frag = self._fragments[pos]
        if frag is None:
            idx = self.order[pos]
            # repr(float) round-trips exactly, which is what json.dumps writes too.
            frag = f'{{"{self._id_key}":{self._json_ids[idx]},"score":{self.scores[idx]!r}}}'
            self._fragments[pos] = frag
        return frag

    def joined(self, n: int, mask: bytearray | None) -> str:
        """The top ``n`` entries not masked out, as comma-joined JSON objects."""
        if mask is None:
            text = self._joined.get(n)
            if text is None:
                text = ",".join([self.fragment(pos) for pos in self.top(n)])
                self._joined[n] = text
            return text
        return ",".join([self.fragment(pos) for pos in self.top(n, (mask,))])

    def top(
        self, n: int, masks: tuple[bytearray, ...] = (), skip: frozenset[int] = frozenset()
    ) -> list[int]:
        """Positions (into ``order``) of the best ``n`` entities no mask removes."""
        out: list[int] = []
        if n <= 0:
            return out
        if not masks and not skip:
            return list(range(min(n, len(self.order))))
        for pos, idx in enumerate(self.order):
            if idx in skip or any(m[idx] for m in masks):
                continue
            out.append(pos)
            if len(out) == n:
                break
        return out


class Scorer:
    """Scores one entity table (items or actions) against query vectors."""

    def __init__(
        self,
        entities: Entities,
        *,
        seed: str,
        kind: str,
        dim: int,
        temperature: float,
        id_key: str,
        cache_size: int,
    ) -> None:
        self.entities = entities
        self.seed = seed
        self.dim = dim
        self.kind = kind
        self.id_key = id_key
        # Uniform [-1, 1] coordinates have variance 1/3, so dot/sqrt(dim)*3 has unit-ish
        # spread; the temperature then sets how peaked the softmax is.
        self._scale = temperature * 3.0 / math.sqrt(dim)
        self.raw = [hash_vector(seed, kind, i, dim) for i in entities.ids]
        self._scaled = [tuple(x * self._scale for x in v) for v in self.raw]
        # JSON string literals of the ids, escaped once.
        self.json_ids = [json.dumps(i, ensure_ascii=False) for i in entities.ids]
        self._cache: LRU[Hashable, RankedList] = LRU(cache_size)

    def entity_vector(self, entity_id: str) -> tuple[float, ...]:
        idx = self.entities.index.get(entity_id)
        if idx is not None:
            return self.raw[idx]
        return hash_vector(self.seed, self.kind, entity_id, self.dim)

    def query(
        self, kind: str, salt: str, key: str, context: Iterable[tuple[str, str]] = ()
    ) -> tuple[float, ...]:
        """The query vector of a user / item / popularity model, plus a context nudge."""
        if kind == "item":
            base = self.entity_vector(key)
        else:
            base = hash_vector(self.seed, kind, f"{salt}\x1f{key}", self.dim)
        if salt and kind == "item":
            s = hash_vector(self.seed, "salt", salt, self.dim)
            base = tuple(a + 0.5 * b for a, b in zip(base, s, strict=True))
        ctx = ";".join(f"{k}={v}" for k, v in context)
        if ctx:
            c = hash_vector(self.seed, "context", ctx, self.dim)
            base = tuple(a + 0.5 * b for a, b in zip(base, c, strict=True))
        return base

    def cached(self, key: Hashable) -> RankedList | None:
        return self._cache.get(key)

    def rank(
        self, key: Hashable, query: tuple[float, ...], exclude: str | None = None
    ) -> RankedList:
        """Rank the whole table for ``query`` (``exclude``: the query item itself) and
        cache the result under ``key``, which must capture everything ``query`` depends on."""
        logits = [sum(map(mul, query, v)) for v in self._scaled]
        ex = self.entities.index.get(exclude) if exclude is not None else None
        ranked = RankedList(self.json_ids, logits, ex, self.id_key)
        self._cache.put(key, ranked)
        return ranked

    def logits_for(self, query: tuple[float, ...], indices: Iterable[int]) -> list[float]:
        scaled = self._scaled
        return [sum(map(mul, query, scaled[i])) for i in indices]


def softmax(logits: Sequence[float]) -> list[float]:
    """A numerically stable softmax whose ratios are exactly those of exp(logit)."""
    if not logits:
        return []
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = math.fsum(exps)
    return [e / total for e in exps]
