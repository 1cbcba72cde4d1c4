"""Indices used from many threads at once: no data races, no deadlocks, right answers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

import pi_match
from pi_match.synth import ric_numbers

KEY = pi_match.Key.from_bytes(bytes(range(32)))


def test_contains_hammered_while_another_index_is_built(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    members, more = pa.array(ric_numbers(rng, 100_000)), ric_numbers(rng, 400_000)
    ready = pi_match.BloomIndex(KEY, "cn_ric", capacity=100_000)
    ready.add(members)
    growing = pi_match.BloomIndex(KEY, "cn_ric", capacity=400_000)
    stop = threading.Event()

    def builder() -> None:
        for chunk in np.array_split(more, 20):
            growing.add(chunk)  # writers take the index's lock; readers of `ready` do not wait
        stop.set()

    def reader(_: int) -> int:
        rounds = 0
        while not stop.is_set() or rounds < 3:
            assert ready.contains(members).all()
            assert growing.contains(more[:1000]).dtype == np.bool_
            rounds += 1
        return rounds

    with ThreadPoolExecutor(6) as pool:
        b = pool.submit(builder)
        counts = list(pool.map(reader, range(5)))
        b.result()
    assert min(counts) >= 3
    assert growing.contains(more).all()


def test_concurrent_adds_to_one_index_lose_nothing() -> None:
    rng = np.random.default_rng(6)
    parts = [ric_numbers(rng, 20_000) for _ in range(8)]
    idx = pi_match.BloomIndex(KEY, "cn_ric", capacity=160_000)
    tags = pi_match.TagSet(KEY, "cn_ric")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(idx.add, parts))
        list(pool.map(tags.add, parts))
    serial = pi_match.BloomIndex(KEY, "cn_ric", capacity=160_000)
    for p in parts:
        serial.add(p)
    assert idx == serial and idx.items_added == 160_000
    assert len(tags) == len(set(np.concatenate(parts)))


def test_union_with_itself_and_with_a_mapped_copy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    big = pi_match.BloomIndex(KEY, "cn_ric", capacity=3_000_000)  # ≥ 16 MiB: mapped on load
    big.add(ric_numbers(rng, 50_000))
    assert (big | big) == big
    big.save(tmp_path / "big.pmi")
    mapped = pi_match.load(tmp_path / "big.pmi")
    assert isinstance(mapped, pi_match.BloomIndex) and mapped.is_mapped
    assert (big | mapped) == big and (mapped | big) == big
    mapped.update(big)
    assert mapped == big
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: big | mapped, range(8)))
    assert all(r == big for r in results)
