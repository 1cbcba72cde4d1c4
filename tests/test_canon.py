"""Canonicalisers: the published vectors, idempotence, and every input container."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pi_match
from conftest import DATA

VECTORS = json.loads((DATA / "canon_vectors.json").read_text("utf-8"))["vectors"]


def test_vectors_cover_every_kind_and_reason() -> None:
    assert len(VECTORS) >= 60
    assert {v["kind"] for v in VECTORS} == set(pi_match.KINDS)
    reasons = {v["reason"] for v in VECTORS} - {None}
    # not_text cannot be written in JSON text; it is tested below.
    assert reasons == set(pi_match.REASONS[1:]) - {"not_text"}


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"{v['kind']}:{v['note']}")
def test_vector(v: dict[str, Any]) -> None:
    assert v["kind"] is not None and v["input"] is not None
    for version in v["versions"]:
        if version not in pi_match._core.CANON_VERSIONS[v["kind"]]:
            continue
        canon, reasons = pi_match.canonicalize_with_reasons(
            v["kind"], [v["input"]], canon_version=version
        )
        assert (canon[0], reasons[0]) == (v["canonical"], v["reason"]), version


def test_vectors_in_bulk_match_one_by_one() -> None:
    # The bulk path runs in parallel above a few thousand items; results must not change.
    for kind in pi_match.KINDS:
        for version in pi_match._core.CANON_VERSIONS[kind]:
            vs = [v for v in VECTORS if v["kind"] == kind and version in v["versions"]] * 500
            canon, reasons = pi_match.canonicalize_with_reasons(
                kind, [v["input"] for v in vs], canon_version=version
            )
            assert canon == [v["canonical"] for v in vs]
            assert reasons == [v["reason"] for v in vs]


def test_not_text() -> None:
    canon, reasons = pi_match.canonicalize_with_reasons(
        "raw", [b"\xff\xfe", 12345, "ok", None, float("nan"), "\ud800"]
    )
    assert canon == [None, None, "ok", None, None, None]
    assert reasons == ["not_text", "not_text", None, "empty", "empty", "not_text"]


def test_unknown_kind_and_single_string_are_clear_errors() -> None:
    with pytest.raises(pi_match.PiMatchError, match='unknown identifier kind "passport"'):
        pi_match.canonicalize("passport", ["x"])
    with pytest.raises(TypeError, match="not one string"):
        pi_match.canonicalize("raw", "abc")
    with pytest.raises(TypeError, match="int64 cannot hold identifiers"):
        pi_match.canonicalize("cn_ric", np.array([1, 2, 3]))


def test_every_container_gives_the_same_answer() -> None:
    values = [v["input"] for v in VECTORS if v["kind"] == "cn_ric"]
    want = pi_match.canonicalize("cn_ric", values)
    assert pi_match.canonicalize("cn_ric", tuple(values)) == want
    assert pi_match.canonicalize("cn_ric", iter(values)) == want
    assert pi_match.canonicalize("cn_ric", np.array(values)) == want
    assert pi_match.canonicalize("cn_ric", np.array(values, dtype=object)) == want
    assert pi_match.canonicalize("cn_ric", np.array(values)[::-1]) == want[::-1]
    assert pi_match.canonicalize("cn_ric", pa.array(values)) == want
    assert pi_match.canonicalize("cn_ric", pa.array(values, pa.large_string())) == want
    assert pi_match.canonicalize("cn_ric", pa.array(values, pa.string_view())) == want
    assert pi_match.canonicalize("cn_ric", pa.chunked_array([values[:5], values[5:]])) == want
    assert pi_match.canonicalize("cn_ric", pa.array(values).dictionary_encode()) == want
    utf8 = [v.encode() for v in values]
    assert pi_match.canonicalize("cn_ric", utf8) == want
    assert pi_match.canonicalize("cn_ric", pa.array(utf8, pa.binary())) == want
    ascii_only = [v for v in values if v.isascii()]
    assert pi_match.canonicalize("cn_ric", np.array([v.encode() for v in ascii_only])) == (
        pi_match.canonicalize("cn_ric", ascii_only)
    )


def test_arrow_nulls_are_missing() -> None:
    canon, reasons = pi_match.canonicalize_with_reasons("raw", pa.array(["a", None, "b"]))
    assert canon == ["a", None, "b"]
    assert reasons == [None, "empty", None]
    with pytest.raises(TypeError, match="Int64 cannot hold identifiers"):
        pi_match.canonicalize("raw", pa.array([1, 2]))


# Text that looks like what seized files contain: digits (ASCII and full-width), X, separators,
# placeholders, and arbitrary Unicode.
messy_text = st.one_of(
    st.text(alphabet="0123456789xX０１２３４５６７８９Ｘ -+()@.\u3000", max_size=25),
    st.text(max_size=25),
    st.sampled_from(["-", "NULL", "\\N", "无", "1.10105E+17", ""]),
)


@pytest.mark.parametrize("kind", pi_match.KINDS)
@given(values=st.lists(messy_text, max_size=20))
def test_canonical_form_is_idempotent(kind: str, values: list[str]) -> None:
    canon, reasons = pi_match.canonicalize_with_reasons(kind, values)
    for c, r in zip(canon, reasons, strict=True):
        assert (c is None) == (r is not None)
        assert r is None or r in pi_match.REASONS
    ok = [c for c in canon if c is not None]
    assert pi_match.canonicalize(kind, ok) == ok


@given(st.integers(0, 10**17 - 1), st.sampled_from(["{}", "{} ", " {}", "{}x"]))
def test_ric_digit_strings_never_crash_and_valid_ones_have_a_good_check(
    body: int, shape: str
) -> None:
    s = shape.format(f"{body:017d}")
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    for c in pi_match.canonicalize("cn_ric", [s + "0", s, s + "X", s[:15]]):
        if c is not None:
            total = sum(int(d) * w for d, w in zip(c[:17], weights, strict=True))
            assert c[17] == "10X98765432"[total % 11]
