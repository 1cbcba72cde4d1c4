"""pi_match.testing: the strategies say the truth, and the ready-made checks catch failures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pi_match
from pi_match import testing
from pi_match.count import count_overlaps

KEY = pi_match.Key.from_bytes(bytes(range(32)))


@pytest.mark.parametrize("kind", pi_match.KINDS)
@given(data=st.data())
def test_strategies_tell_the_truth(kind: str, data: st.DataObject) -> None:
    canon = data.draw(testing.valid_values(kind))
    assert pi_match.canonicalize(kind, [canon]) == [canon]
    messy, want = data.draw(testing.messy_values(kind))
    assert pi_match.canonicalize(kind, [messy]) == [want]
    if kind != "raw":
        bad, reason = data.draw(testing.invalid_values(kind))
        assert pi_match.canonicalize_with_reasons(kind, [bad])[1] == [reason]
    p = data.draw(testing.placeholders())
    assert pi_match.canonicalize_with_reasons(kind, [p])[1][0] in ("empty", "placeholder")


@given(testing.list_families("cn_mobile", n=3, max_size=40))
def test_families_with_known_overlaps(fam: testing.ListFamily) -> None:
    sets = []
    for values in fam.lists:
        t = pi_match.TagSet(KEY, "cn_mobile")
        t.add(values)
        sets.append(t)
        testing.check_no_false_negatives(t, values)
    ov = count_overlaps(sets)
    assert ov.union.value == fam.union
    assert ov.pairwise[0][1].value == fam.overlap(0, 1)


def test_checks_catch_broken_pipelines() -> None:
    values = [f"1380000{i:04d}" for i in range(2000)]
    good = pi_match.BloomIndex(KEY, "cn_mobile", capacity=2000, fpr=1e-3)
    good.add(values)
    testing.check_no_false_negatives(good, values)
    with pytest.raises(AssertionError, match="not found"):
        testing.check_no_false_negatives(good, [f"1390000{i:04d}" for i in range(50)])
    others = [f"1390{i:07d}" for i in range(50_000)]
    assert testing.check_fpr(good, others, target=1e-3) < 3e-3
    tiny = pi_match.BloomIndex(KEY, "cn_mobile", capacity=10, fpr=0.5)
    tiny.add(values)
    with pytest.raises(AssertionError, match="false positives"):
        testing.check_fpr(tiny, others, target=1e-3)

    def honest(seed: int) -> tuple[pi_match.Estimate, float]:
        k = pi_match.Key.from_bytes(bytes([seed]) * 32)
        b = pi_match.BloomIndex(k, "cn_mobile", capacity=500, fpr=1e-2)
        b.add(values[:500])
        return b.estimate_count(), 500.0

    assert testing.check_interval_coverage(honest, trials=40) >= 0.9

    def overconfident(seed: int) -> tuple[pi_match.Estimate, float]:
        e, truth = honest(seed)
        return pi_match.Estimate(e.value, e.value, e.value, "point"), truth + 0.5

    with pytest.raises(AssertionError, match="held the truth"):
        testing.check_interval_coverage(overconfident, trials=20)
    assert np.isfinite(testing.check_fpr(good, others, target=1e-3))
