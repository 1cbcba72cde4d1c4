"""The accuracy test kit: hypothesis strategies for realistic identifiers and lists with known
overlaps, and ready-made property checks to point at your own pipeline.

>>> from hypothesis import given, settings
>>> import pi_match
>>> from pi_match import testing
>>> @settings(max_examples=20)
... @given(testing.messy_values("cn_ric"))
... def test_mess_canonicalises(pair):
...     messy, canonical = pair
...     assert pi_match.canonicalize("cn_ric", [messy]) == [canonical]
>>> test_mess_canonicalises()
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - hypothesis is in the test extra
    raise ImportError('pi_match.testing needs hypothesis: pip install "pi_match[test]"') from e

from ._core import BloomIndex, Estimate, TagSet

__all__ = [
    "ListFamily",
    "check_fpr",
    "check_interval_coverage",
    "check_no_false_negatives",
    "invalid_values",
    "list_families",
    "messy_values",
    "placeholders",
    "valid_values",
]

PROVINCES = [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
             50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83]  # fmt: skip
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
FULLWIDTH = str.maketrans(
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz@.",
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ"
    "ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ＠．",
)
PLACEHOLDERS = ["", " ", "-", "--", "NULL", "null", "\\N", "无", "N/A"]


def _ric_check(body: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def _luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body + "0")):
        v = int(c) * (2 if i % 2 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


@st.composite
def _ric(draw: Any) -> str:
    prov = draw(st.sampled_from(PROVINCES))
    rest = draw(st.integers(0, 9999))
    d = draw(st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2099, 12, 31)))
    seq = draw(st.integers(0, 999))
    body = f"{prov:02d}{rest:04d}{d:%Y%m%d}{seq:03d}"
    return body + _ric_check(body)


@st.composite
def _mobile(draw: Any) -> str:
    second = draw(st.sampled_from("3456789"))
    return f"+861{second}{draw(st.integers(0, 10**9 - 1)):09d}"


@st.composite
def _email(draw: Any) -> str:
    local = draw(st.from_regex(r"[a-z0-9][a-z0-9._]{0,15}", fullmatch=True))
    domain = draw(st.sampled_from(["qq.com", "163.com", "126.com", "sina.com", "gmail.com",
                                   "foxmail.com", "example.cn"]))  # fmt: skip
    return f"{local}@{domain}"


@st.composite
def _card(draw: Any) -> str:
    length = draw(st.integers(12, 19))
    body: str = draw(st.sampled_from(["62", "4", "5"])) + "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=length, max_size=length))
    )
    body = body[: length - 1]
    return body + _luhn_digit(body)


_VALID = {
    "cn_ric": _ric(),
    "cn_mobile": _mobile(),
    "email": _email(),
    "bank_card": _card(),
    "raw": st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]),
                   min_size=1, max_size=20).filter(lambda s: s.strip() == s and s.lower() not in
                                                    {p.lower() for p in PLACEHOLDERS}),
}  # fmt: skip


def valid_values(kind: str) -> st.SearchStrategy[str]:
    """Values already in canonical form."""
    if kind == "raw":
        from ._core import canonicalize

        def canon(s: str) -> str:
            return canonicalize("raw", [s])[0] or s

        return _VALID["raw"].map(canon).filter(lambda s: canonicalize("raw", [s]) == [s])
    return _VALID[kind]


@st.composite
def _messy(draw: Any, kind: str) -> tuple[str, str]:
    canon = draw(valid_values(kind))
    if kind == "cn_ric":
        shapes = [canon, canon.lower(), canon.translate(FULLWIDTH),
                  f"{canon[:6]} {canon[6:14]} {canon[14:]}",
                  f"{canon[:6]}-{canon[6:14]}-{canon[14:]}",
                  f"  {canon}\t", "\u3000" + canon]  # fmt: skip
        if canon[6:8] == "19":
            shapes.append(canon[:6] + canon[8:17])  # the 15-digit form
    elif kind == "cn_mobile":
        d = canon[3:]
        shapes = [d, canon, "0086" + d, "86" + d, f"+86 {d[:3]} {d[3:7]} {d[7:]}",
                  f"{d[:3]}-{d[3:7]}-{d[7:]}", f"({d[:3]}){d[3:]}",
                  d.translate(FULLWIDTH)]  # fmt: skip
    elif kind == "email":
        shapes = [canon, canon.upper(), f"  {canon} ", canon.translate(FULLWIDTH)]
    elif kind == "bank_card":
        shapes = [canon, " ".join(canon[i : i + 4] for i in range(0, len(canon), 4)),
                  canon[:6] + "-" + canon[6:], canon.translate(FULLWIDTH)]  # fmt: skip
    else:
        shapes = [canon, f"  {canon}  "]
    return draw(st.sampled_from(shapes)), canon


def messy_values(kind: str) -> st.SearchStrategy[tuple[str, str]]:
    """(what a seized file holds, the canonical value it must become): full-width characters,
    +86/0086 prefixes, spaces, dashes, brackets, lower-case x, 15-digit IDs, padding."""
    return _messy(kind)


def _check_fails(value: str) -> str:
    """The reason a value whose check character is wrong is rejected for: `excel_rounded` when
    it has the shape Excel's rounding leaves (over 15 digits, zeros after the 15th), else
    `bad_checksum` (docs/FORMAT.md)."""
    rounded = len(value) > 15 and value.isdigit() and set(value[15:]) == {"0"}
    return "excel_rounded" if rounded else "bad_checksum"


@st.composite
def _invalid(draw: Any, kind: str) -> tuple[str, str]:
    canon = draw(valid_values(kind))
    options: list[tuple[str, str]] = [(draw(st.sampled_from(PLACEHOLDERS[2:])), "placeholder")]
    if kind == "cn_ric":
        wrong = "0" if canon[-1] != "0" else "1"
        options += [(canon[:17] + wrong, _check_fails(canon[:17] + wrong)),
                    (canon[:16], "bad_length"),
                    (f"{int(canon[:17]) / 1e16:.5f}E+17", "excel_scientific")]  # fmt: skip
    elif kind == "cn_mobile":
        options += [(canon[3:13], "bad_length"), ("12" + canon[5:], "bad_prefix"),
                    (f"{int(canon[3:]) / 1e10:.5f}E+10", "excel_scientific")]  # fmt: skip
    elif kind == "email":
        options += [
            (canon.replace("@", ""), "bad_format"),
            (canon.replace("@", "@@"), "bad_format"),
        ]
    elif kind == "bank_card":
        wrong = str((int(canon[-1]) + 1) % 10)
        options += [(canon[:-1] + wrong, _check_fails(canon[:-1] + wrong)),
                    ("12345678901", "bad_length")]  # fmt: skip
    choice: tuple[str, str] = draw(st.sampled_from(options))
    return choice


def invalid_values(kind: str) -> st.SearchStrategy[tuple[str, str]]:
    """(a value that must be rejected, the reason pi_match must give)."""
    return _invalid(kind)


def placeholders() -> st.SearchStrategy[str]:
    """Placeholders for "no value" that must count as missing, never as invalid."""
    return st.sampled_from(PLACEHOLDERS)


@dataclass
class ListFamily:
    """N lists of messy values and the truth: `members[i]` is the set of canonical values in
    list i (so every overlap, union and unique count is known)."""

    kind: str
    lists: list[list[str]]
    members: list[set[str]]

    def overlap(self, i: int, j: int) -> int:
        return len(self.members[i] & self.members[j])

    @property
    def union(self) -> int:
        return len(set().union(*self.members))


@st.composite
def _family(draw: Any, kind: str, n: int, max_size: int) -> ListFamily:
    pool = draw(st.lists(messy_values(kind), min_size=1, max_size=max_size * n,
                         unique_by=lambda p: p[1]))  # fmt: skip
    lists: list[list[str]] = []
    members: list[set[str]] = []
    for _ in range(n):
        picks = draw(st.lists(st.integers(0, len(pool) - 1), max_size=max_size))
        lists.append([pool[i][0] for i in picks])
        members.append({pool[i][1] for i in picks})
    return ListFamily(kind, lists, members)


def list_families(kind: str, n: int = 2, *, max_size: int = 50) -> st.SearchStrategy[ListFamily]:
    """Families of `n` messy lists drawn from one pool, so they overlap, with the truth."""
    return _family(kind, n, max_size)


# ---- ready-made checks ----------------------------------------------------------------------


def check_no_false_negatives(index: BloomIndex | TagSet, values: Any) -> None:
    """Every value that canonicalises must be found in an index built from it."""
    hits, codes = index.contains(values, reasons=True)
    missed = [i for i, (h, c) in enumerate(zip(hits.tolist(), codes.tolist(), strict=True))
              if c == 0 and not h]  # fmt: skip
    if missed:
        raise AssertionError(
            f"{len(missed)} valid values not found (first at position {missed[0]})"
        )


def check_fpr(index: BloomIndex, non_members: Any, *, target: float, factor: float = 1.5) -> float:
    """The measured false-positive rate on values known to be absent stays within `factor`
    times `target`, allowing for sampling noise (3 standard deviations). Returns the rate."""
    hits, codes = index.contains(non_members, reasons=True)
    n = int((codes == 0).sum())
    if n == 0:
        raise AssertionError("no valid non-members to measure with")
    fp = int(hits.sum())
    bound = factor * target * n + 3 * math.sqrt(factor * target * n) + 1
    if fp > bound:
        raise AssertionError(
            f"{fp} false positives in {n} lookups: rate {fp / n:.2e} > {factor} × {target:g}"
        )
    return fp / n


def check_interval_coverage(
    trial: Callable[[int], tuple[Estimate, float]], *, trials: int = 100, min_rate: float = 0.9
) -> float:
    """Run `trial(seed)` (returning an estimate and the true value) `trials` times; the 95 %
    intervals must hold the truth at least `min_rate` of the time. Returns the rate."""
    covered = 0
    for seed in range(trials):
        est, truth = trial(seed)
        covered += est.low <= truth <= est.high
    rate = covered / trials
    if rate < min_rate:
        raise AssertionError(
            f"intervals held the truth in {rate:.0%} of {trials} trials (< {min_rate:.0%})"
        )
    return rate
