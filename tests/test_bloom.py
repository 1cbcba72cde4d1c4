"""BloomIndex: the contracts of issue #2 as properties."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pi_match
from pi_match.synth import mobile_numbers, ric_numbers

KEY = pi_match.Key.from_bytes(bytes(range(32)))
RNG = np.random.default_rng(7)
POOL = ric_numbers(RNG, 20_000)


def index_of(
    values: list[str] | np.ndarray, capacity: int = 1000, fpr: float = 1e-6
) -> pi_match.BloomIndex:
    idx = pi_match.BloomIndex(KEY, "cn_ric", capacity=capacity, fpr=fpr)
    idx.add(values)
    return idx


@given(st.lists(st.integers(0, len(POOL) - 1), max_size=300), st.sampled_from([1e-2, 1e-4, 1e-6]))
def test_no_false_negatives(picks: list[int], fpr: float) -> None:
    values = POOL[picks]
    idx = index_of(values, capacity=max(1, len(values)), fpr=fpr)
    assert idx.contains(values).all()
    assert all(v in idx for v in values[:20])


@pytest.mark.parametrize("fpr", [1e-2, 1e-3, 1e-4])
def test_measured_fpr_at_capacity_is_within_bound(fpr: float) -> None:
    # At capacity the expected rate is at most fpr; with n_probe ≥ 200/fpr probes the count of
    # false positives has sd ≤ 7 % of its mean, so 1.5× the target is far outside noise.
    capacity = 50_000
    rng = np.random.default_rng(11)
    members = ric_numbers(rng, capacity)
    idx = index_of(members, capacity=capacity, fpr=fpr)
    probes = np.setdiff1d(ric_numbers(rng, int(200 / fpr)), members)
    measured = idx.contains(probes).mean()
    assert measured <= 1.5 * fpr, (measured, fpr)
    assert measured <= 1.5 * idx.expected_fpr(capacity)


def test_measured_fpr_at_one_in_a_million() -> None:
    # The default rate: 4 million probes against a full index of 100k (expect ~4 hits).
    rng = np.random.default_rng(12)
    members = mobile_numbers(rng, 100_000)
    idx = pi_match.BloomIndex(KEY, "cn_mobile", capacity=100_000)
    idx.add(members)
    probes = np.setdiff1d(mobile_numbers(rng, 4_000_000), members)
    hits = int(idx.contains(probes).sum())
    # Poisson(≤4): P(X ≥ 15) < 1e-5.
    assert hits < 15, hits


@given(
    st.lists(st.integers(0, len(POOL) - 1), max_size=200),
    st.lists(st.integers(0, len(POOL) - 1), max_size=200),
)
def test_union_equals_building_from_the_concatenation(a: list[int], b: list[int]) -> None:
    ia, ib = index_of(POOL[a]), index_of(POOL[b])
    both = index_of(np.concatenate([POOL[a], POOL[b]]))
    assert (ia | ib) == both


@given(st.lists(st.integers(0, len(POOL) - 1), max_size=300), st.integers(1, 4))
def test_different_sizes_fold_to_the_smaller(picks: list[int], shrink: int) -> None:
    values = POOL[picks]
    big = index_of(values, capacity=1000 * 2**shrink)
    small = index_of(values, capacity=1000)
    assert big.num_blocks == small.num_blocks * 2**shrink
    assert (big | small) == small
    assert (small | big) == small
    assert pi_match.estimate_overlap(big, small).low <= len(set(values))


def test_estimates_hold_the_truth() -> None:
    rng = np.random.default_rng(3)
    a, b = ric_numbers(rng, 30_000), ric_numbers(rng, 20_000)
    b[:5_000] = a[:5_000]
    ia, ib = index_of(a, capacity=30_000), index_of(b, capacity=30_000)
    na, shared = len(set(a)), len(set(a) & set(b))
    ea, eo = ia.estimate_count(), pi_match.estimate_overlap(ia, ib)
    assert ea.low <= na <= ea.high and ea.method == "bloom_popcount"
    assert eo.low <= shared <= eo.high and eo.method == "bloom_inclusion_exclusion"
    assert not ea.exact


# Values of Excel's rounded shape (15 digits, then zeros: valid or not), among real IDs.
ROUNDED = st.sampled_from(
    ["110105194912310000", "110101195001010000", " 110105194912310000 ", "1101051949123100000"]
    + [v for v in POOL if v.endswith("000")][:5]
)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(list(POOL[:200])), ROUNDED, st.text(max_size=20))))
@pytest.mark.filterwarnings("ignore::pi_match.RejectedValuesWarning")
def test_holding_excels_rounded_shape_in_add_is_marking_it_by_hand(values: list[str]) -> None:
    # `hold_excel_rounded=True` (told in add's own tasks) holds exactly what a mask from
    # `excel_rounded_shape` does: the same codes, the same index, the same exact tags.
    told = pi_match.BloomIndex(KEY, "cn_ric", capacity=1000)
    marked = pi_match.BloomIndex(KEY, "cn_ric", capacity=1000)
    sets = [pi_match.TagSet(KEY, "cn_ric") for _ in range(2)]
    a = told.add(values, tag_set=sets[0], hold_excel_rounded=True)
    shape = pi_match._core.excel_rounded_shape(values)
    b = marked.add(values, tag_set=sets[1], hold=shape)
    assert a.codes.tolist() == b.codes.tolist()
    assert told == marked and sets[0] == sets[1]
    # Held: the values that are valid and of the shape — nothing else, none of them added.
    plain = pi_match.BloomIndex(KEY, "cn_ric", capacity=1000).add(values).codes
    want = [i for i, c in enumerate(plain) if c == 0 and shape is not None and shape[i]]
    assert [i for i, c in enumerate(a.codes) if c == pi_match._core.HELD] == want
    assert a.valid == sum(c == 0 for c in plain) - len(want)


def test_add_reports_by_reason_and_contains_warns() -> None:
    idx = pi_match.BloomIndex(KEY, "cn_ric", capacity=10)
    rep = idx.add(["11010519491231002X", "1.10105E+17", "-", "", "11010519491231002"])
    assert (rep.rows, rep.valid, rep.missing, rep.rejected) == (5, 1, 2, 2)
    assert rep.rejected_by_reason == {"excel_scientific": 1, "bad_length": 1}
    assert rep.missing_by_reason == {"placeholder": 1, "empty": 1}
    assert [pi_match.REASONS[c] for c in rep.codes] == [
        "ok",
        "excel_scientific",
        "placeholder",
        "empty",
        "bad_length",
    ]
    with pytest.warns(pi_match.RejectedValuesWarning, match="1 excel_scientific"):
        hits = idx.contains(["11010519491231002x", "1.10105E+17"])
    assert hits.tolist() == [True, False] and hits.dtype == np.bool_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hits, codes = idx.contains(["1.10105E+17"], reasons=True)
    assert hits.tolist() == [False] and pi_match.REASONS[codes[0]] == "excel_scientific"
    # A number has already lost what it stood for (leading zeros, an X): not a silent False.
    for bad in (12345, None, 1.5):
        with pytest.raises(TypeError, match="str or bytes"):
            bad in idx  # noqa: B015


def test_inputs_numpy_arrow_list_agree() -> None:
    values = POOL[:5000]
    ref = index_of(values.tolist())
    assert index_of(values) == ref
    assert index_of(pa.array(values)) == ref
    assert index_of(pa.chunked_array([values[:100], values[100:]])) == ref
    assert index_of(np.char.encode(values)) == ref
    assert ref.contains(pa.array(values)).all()


def test_key_required_and_key_mismatch(other_key: pi_match.Key) -> None:
    idx = index_of(POOL[:10])
    bare = pi_match.BloomIndex.from_bytes(idx.to_bytes())
    assert not bare.has_key
    assert bare.estimate_count() == idx.estimate_count()
    with pytest.raises(pi_match.KeyRequiredError):
        bare.add(["11010519491231002X"])
    with pytest.raises(pi_match.KeyRequiredError):
        bare.contains(POOL[:1])
    with pytest.raises(pi_match.KeyMismatchError) as e:
        pi_match.BloomIndex.from_bytes(idx.to_bytes(), key=other_key)
    assert KEY.id in str(e.value) and other_key.id in str(e.value)
    bare.attach_key(KEY)
    assert bare.contains(POOL[:10]).all()
    theirs = pi_match.BloomIndex(other_key, "cn_ric", capacity=1000)
    with pytest.raises(pi_match.KeyMismatchError):
        idx | theirs
    with pytest.raises(pi_match.KeyMismatchError, match="cn_mobile"):
        idx | pi_match.BloomIndex(KEY, "cn_mobile", capacity=1000)
    assert isinstance(pi_match.KeyRequiredError(), pi_match.PiMatchError)
    assert isinstance(pi_match.FormatError(), ValueError)


def test_save_load_pickle_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    idx = index_of(POOL[:1000])
    path = tmp_path / "case.pmi"
    idx.save(path)
    loaded = pi_match.load(path)
    assert isinstance(loaded, pi_match.BloomIndex) and loaded == idx and not loaded.has_key
    loaded = pi_match.load(path, key=KEY)
    assert loaded.contains(POOL[:1000]).all()
    restored = pickle.loads(pickle.dumps(idx))
    assert restored == idx and not restored.has_key
    assert b"\x00\x01\x02\x03\x04\x05\x06\x07" not in pickle.dumps(idx)


def test_large_files_are_memory_mapped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    idx = pi_match.BloomIndex(KEY, "cn_ric", capacity=3_000_000, fpr=1e-6)
    assert idx.size_bytes >= 16 << 20
    idx.add(POOL)
    idx.save(tmp_path / "big.pmi")
    loaded = pi_match.load(tmp_path / "big.pmi", key=KEY)
    assert loaded.is_mapped
    assert loaded.contains(POOL).all()
    assert loaded == idx
    loaded.add(["11010519491231002X"])  # copy-on-write
    assert not loaded.is_mapped and "11010519491231002X" in loaded
    assert "11010519491231002X" not in pi_match.load(tmp_path / "big.pmi", key=KEY)


@settings(max_examples=20)
@given(capacity=st.integers(1, 10**7), fpr=st.floats(1e-9, 0.5))
def test_layout_meets_the_rate(capacity: int, fpr: float) -> None:
    blocks, bpk = pi_match.plan_layout(capacity, fpr)
    assert pi_match.expected_fpr(capacity, blocks, bpk) <= fpr
    if blocks > 1:
        assert pi_match.expected_fpr(capacity, blocks // 2, bpk) > fpr


def test_bad_parameters() -> None:
    for bad in (0.0, 1.0, -1.0, float("nan")):
        with pytest.raises(pi_match.PiMatchError, match="fpr"):
            pi_match.BloomIndex(KEY, "cn_ric", capacity=10, fpr=bad)
    with pytest.raises(pi_match.PiMatchError, match="unknown identifier kind"):
        pi_match.BloomIndex(KEY, "ssn", capacity=10)


def test_results_do_not_depend_on_thread_count() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, pi_match\n"
        "from pi_match.synth import ric_numbers\n"
        "k = pi_match.Key.from_bytes(bytes(range(32)))\n"
        "v = ric_numbers(np.random.default_rng(3), 200_000)\n"
        "b = pi_match.BloomIndex(k, 'cn_ric', capacity=200_000); b.add(v)\n"
        "t = pi_match.TagSet(k, 'cn_ric'); t.add(v)\n"
        "h = b.contains(v[::-1])\n"
        "sys.stdout.buffer.write(b.to_bytes()[64:] + t.to_bytes()[64:] + h.tobytes())\n"
    )
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "RAYON_NUM_THREADS": threads}
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                   check=True).stdout)  # fmt: skip
    assert outs[0] == outs[1] and len(outs[0]) > 1_000_000


def test_in_place_union() -> None:
    a, b = index_of(POOL[:500]), index_of(POOL[500:900])
    both = index_of(POOL[:900])
    a |= b
    assert a == both and a.items_added == 900
    a.update(a)  # a ∪ a = a, and no deadlock on its own lock
    assert a == both
    small = index_of(POOL[:900], capacity=100)
    big = index_of(POOL[:900], capacity=100_000)
    big |= small  # the larger one is folded to the smaller size
    assert big == small
    with pytest.raises(pi_match.KeyMismatchError):
        a |= pi_match.BloomIndex(KEY, "email", capacity=10)


def test_add_feeds_a_tag_set_in_the_same_pass(other_key: pi_match.Key) -> None:
    values = list(POOL[:3000]) + ["1.10105E+17", "-"]
    both = pi_match.TagSet(KEY, "cn_ric")
    idx = pi_match.BloomIndex(KEY, "cn_ric", capacity=3000)
    rep = idx.add(values, tag_set=both)
    alone = pi_match.TagSet(KEY, "cn_ric")
    alone.add(values)
    assert both == alone and idx == index_of(values, capacity=3000)
    assert (rep.valid, rep.rejected, rep.missing) == (3000, 1, 1)
    with pytest.raises(pi_match.KeyMismatchError):
        idx.add(values, tag_set=pi_match.TagSet(other_key, "cn_ric"))
    with pytest.raises(pi_match.KeyMismatchError):
        idx.add(values, tag_set=pi_match.TagSet(KEY, "email"))
