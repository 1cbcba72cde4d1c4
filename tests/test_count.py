"""Counting across cases: exact counts are exact, estimates hold the truth at the promised rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pi_match
from pi_match.count import count_overlaps, overlaps_from_tags, plan, probe_count
from pi_match.synth import mobile_numbers

POOL = mobile_numbers(np.random.default_rng(99), 5000)
POOL = np.unique(POOL)


@given(st.lists(st.sets(st.integers(0, 200), max_size=120), min_size=2, max_size=4))
def test_exact_counts_are_exact(sets: list[set[int]]) -> None:
    key = pi_match.Key.from_bytes(bytes(range(32)))
    arts = []
    for s in sets:
        t = pi_match.TagSet(key, "cn_mobile")
        t.add(POOL[sorted(s)])
        arts.append(t)
    ov = count_overlaps(arts)
    union = set().union(*sets)
    member = {x: tuple(i for i, s in enumerate(sets) if x in s) for x in union}
    assert ov.exact and ov.union.value == len(union)
    assert ov.in_two_or_more.value == sum(len(m) >= 2 for m in member.values())
    assert [u.value for u in ov.unique] == [
        sum(m == (i,) for m in member.values()) for i in range(len(sets))
    ]
    for i, a in enumerate(sets):
        for j, b in enumerate(sets):
            assert ov.pairwise[i][j].value == len(a & b)
    for combo, e in ov.combinations.items():
        assert e.value == sum(m == combo for m in member.values())
    # The numpy path used by the report agrees.
    tags = [pi_match._core.row_tags(key, "cn_mobile", POOL[sorted(s)])[0] for s in sets]
    ov2 = overlaps_from_tags("cn_mobile", ov.names, [np.unique(t) for t in tags])
    assert ov2.union.value == ov.union.value and ov2.combinations == ov.combinations


CONFIGS = [  # (sizes of the only-in-i cells, shared-by-all, shared-by-first-two, fpr)
    ((3000, 2000, 1000), 20, 10, 1e-3),  # small overlaps
    ((2000, 1500, 1000), 1500, 800, 1e-3),  # large overlaps
    ((5000, 200, 200), 100, 0, 1e-2),  # lopsided, small, loaded filters
]


@pytest.mark.parametrize("cells", CONFIGS)
def test_bloom_intervals_cover_the_truth(cells: tuple[tuple[int, ...], int, int, float]) -> None:
    only, all3, first2, fpr = cells
    # Deterministic keys and data: the outcome is fixed, never flaky. With a true coverage of
    # 95 %, 100 trials fall below 90 % with probability about 1.5 %.
    trials = 100
    hits = {"union": 0, "in2": 0, "unique": 0, "pair": 0, "combo": 0}
    rng = np.random.default_rng(7)
    for t in range(trials):
        key = pi_match.Key.from_bytes(t.to_bytes(32, "little"))
        total = sum(only) + all3 + first2
        ids = np.char.mod("%011d", 13_000_000_000 + rng.choice(10**9, total, replace=False))
        parts = np.split(ids, np.cumsum([*only, all3]))
        members = [
            np.concatenate([parts[0], parts[3], parts[4]]),
            np.concatenate([parts[1], parts[3], parts[4]]),
            np.concatenate([parts[2], parts[3]]),
        ]
        idx = []
        for m in members:
            b = pi_match.BloomIndex(key, "cn_mobile", capacity=len(m), fpr=fpr)
            b.add(m)
            idx.append(b)
        ov = count_overlaps(idx)
        truths = {"union": total, "in2": all3 + first2, "unique": only[2],
                  "pair": all3 + first2, "combo": first2}  # fmt: skip
        ests = {"union": ov.union, "in2": ov.in_two_or_more, "unique": ov.unique[2],
                "pair": ov.pairwise[0][1], "combo": ov.combinations[(0, 1)]}  # fmt: skip
        for k, e in ests.items():
            hits[k] += e.low <= truths[k] <= e.high
    for k, h in hits.items():
        assert h / trials >= 0.9, (k, h / trials, cells)


@settings(max_examples=15, derandomize=True)
@given(n=st.integers(100, 5000), share=st.floats(0, 1), fpr=st.sampled_from([1e-2, 1e-3]))
def test_probe_count_interval(n: int, share: float, fpr: float) -> None:
    rng = np.random.default_rng(n)
    theirs_n = 4000
    ids = np.char.mod("%011d", 13_000_000_000 + rng.choice(10**9, theirs_n + n, replace=False))
    inside = int(share * min(n, theirs_n))
    mine = np.concatenate([ids[:inside], ids[theirs_n : theirs_n + n - inside]])
    covered = 0
    for t in range(20):
        key = pi_match.Key.from_bytes(bytes([t]) * 32)
        theirs = pi_match.BloomIndex(key, "cn_mobile", capacity=theirs_n, fpr=fpr)
        theirs.add(ids[:theirs_n])
        pc = probe_count(theirs, mine)
        assert pc.probed == len(mine) and pc.hits >= inside
        covered += pc.estimate.low <= inside <= pc.estimate.high
    assert covered >= 16, covered
    exact = pi_match.TagSet(key, "cn_mobile")
    exact.add(ids[:theirs_n])
    assert probe_count(exact, mine).estimate.value == inside


def test_plan() -> None:
    p = plan([10_000_000, 5_000_000], 200_000)
    assert p.recommendation == "bloom" and p.num_blocks and p.expected_sd
    assert 1.96 * p.expected_sd <= 0.5 * 200_000
    # One size smaller would not have been precise enough.
    assert 1.96 * pi_match._core.expected_overlap_sd(1e7, 5e6, 2e5, p.num_blocks // 2, 2) > 1e5
    assert plan([100_000_000, 100_000_000], 50).recommendation == "tagset"
    # One size: an index for probing that list at the rate asked.
    one = plan([10_000], fpr=1e-4)
    assert one.recommendation == "bloom" and one.fpr is not None and one.fpr <= 1e-4
    for bad in ([], [0]):
        with pytest.raises(pi_match.PiMatchError):
            plan(bad, 5)
    with pytest.raises(pi_match.PiMatchError):
        plan([10, 20], 0)


def test_mixed_or_single_inputs_are_refused() -> None:
    key = pi_match.Key.from_bytes(bytes(range(32)))
    b = pi_match.BloomIndex(key, "cn_mobile", capacity=10)
    t = pi_match.TagSet(key, "cn_mobile")
    with pytest.raises(TypeError):
        count_overlaps([b, t])
    with pytest.raises(pi_match.PiMatchError):
        count_overlaps([b])
    with pytest.raises(pi_match.KeyMismatchError):
        count_overlaps([b, pi_match.BloomIndex(key, "cn_ric", capacity=10)])
