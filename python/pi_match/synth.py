"""Synthetic identifiers for the demo, the benchmarks and the tests: valid values made with
numpy (no per-item Python work), and the mess real seized data has, applied to a share of them
with the ground truth kept beside.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> ids = ric_numbers(rng, 3)
>>> canonicalize("cn_ric", ids) == list(ids)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._core import canonicalize

__all__ = ["MessyColumn", "mess", "mobile_numbers", "ric_numbers"]

# Real county-level codes from several provinces, and the HK / Macau / Taiwan permit codes.
REGIONS = np.array(
    [
        110101,
        110105,
        110108,
        120101,
        130102,
        140105,
        210102,
        310101,
        310115,
        320102,
        320505,
        330106,
        340104,
        350203,
        360102,
        370102,
        410105,
        420106,
        430104,
        440103,
        440305,
        450103,
        460106,
        500101,
        510104,
        520102,
        530102,
        610102,
        620102,
        650102,
        810000,
        820000,
        830000,
    ],
    dtype=np.int64,
)
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = np.array(list("10X98765432"))
_FULLWIDTH = str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")


def ric_numbers(
    rng: np.random.Generator, n: int, *, born: tuple[str, str] = ("1940-01-01", "2008-12-31")
) -> npt.NDArray[np.str_]:
    """`n` valid 18-character ID numbers (repeats possible, as in real lists)."""
    region = rng.choice(REGIONS, n)
    lo, hi = (np.datetime64(d, "D").astype(np.int64) for d in born)
    days = rng.integers(lo, hi + 1, n).astype("datetime64[D]")
    ymd = days.astype(str)  # 'YYYY-MM-DD'
    date = np.char.replace(ymd, "-", "").astype(np.int64)
    seq = rng.integers(0, 1000, n)
    body = region * 10**11 + date * 10**3 + seq
    digits = (body[:, None] // 10 ** np.arange(16, -1, -1)) % 10
    check = _CHECK[(digits @ _WEIGHTS) % 11]
    return np.char.add(np.char.mod("%017d", body), check)


def mobile_numbers(rng: np.random.Generator, n: int) -> npt.NDArray[np.str_]:
    """`n` valid 11-digit mainland mobile numbers (canonical form without +86)."""
    prefixes = np.array(
        [
            130,
            131,
            132,
            133,
            135,
            136,
            137,
            138,
            139,
            150,
            151,
            152,
            155,
            157,
            158,
            159,
            166,
            176,
            177,
            180,
            181,
            185,
            186,
            187,
            188,
            189,
            198,
            199,
        ]
    )
    body = rng.choice(prefixes, n).astype(np.int64) * 10**8 + rng.integers(0, 10**8, n)
    return np.char.mod("%d", body)


@dataclass
class MessyColumn:
    """Values as a seized file would hold them, with the truth: `clean[i]` is the canonical
    value row i stands for, `usable[i]` whether row i should canonicalise to it."""

    values: list[str]
    clean: list[str]
    usable: npt.NDArray[np.bool_]


def _ric_variants(v: str, rng: np.random.Generator) -> tuple[str, bool]:
    r = rng.random()
    if r < 0.25:
        return v.lower(), True
    if r < 0.45:
        return f"{v[:6]} {v[6:14]} {v[14:]}", True
    if r < 0.60:
        return v.translate(_FULLWIDTH), True
    if r < 0.72 and v[6:8] == "19":
        return v[:6] + v[8:17], True  # the 15-digit 1989 form
    if r < 0.84:
        return f"{int(v[:17]) / 10**17 * 10:.5f}E+17", False  # Excel's rendering
    if r < 0.92:
        bad = str((int(v[16]) + 1) % 10)
        return v[:16] + bad + v[17], False  # a typo: checksum fails
    return v[:17], False  # truncated


def _mobile_variants(v: str, rng: np.random.Generator) -> tuple[str, bool]:
    r = rng.random()
    if r < 0.3:
        return f"+86 {v[:3]}-{v[3:7]}-{v[7:]}", True
    if r < 0.5:
        return "0086" + v, True
    if r < 0.65:
        return f"({v[:3]}) {v[3:7]} {v[7:]}", True
    if r < 0.8:
        return v.translate(_FULLWIDTH), True
    if r < 0.9:
        return v[:10], False
    return "2" + v[1:], False


def mess(
    values: npt.NDArray[np.str_],
    kind: str,
    rng: np.random.Generator,
    *,
    messy: float = 0.05,
    missing: float = 0.01,
) -> MessyColumn:
    """Rewrite a share `messy` of valid values the way seized files hold them (some still
    usable, some not), and replace a share `missing` with placeholders."""
    variants = {"cn_ric": _ric_variants, "cn_mobile": _mobile_variants}[kind]
    out = values.tolist()
    clean = canonicalize(kind, out)
    assert all(c is not None for c in clean), "mess() takes valid values"
    usable = np.ones(len(out), dtype=bool)
    picks = rng.random(len(out))
    placeholders = ["", "-", "NULL", "\\N", "无"]
    for i in np.flatnonzero(picks < messy + missing):
        if picks[i] < missing:
            out[i] = placeholders[int(rng.integers(len(placeholders)))]
            usable[i] = False
        else:
            out[i], usable[i] = variants(out[i], rng)
    return MessyColumn(out, [c for c in clean if c is not None], usable)
