"""Counting victims across cases: overlaps, the distinct total, who is in two or more cases and
who is unique to one, with honest accuracy. From tag sets every number is exact; from Bloom
indices each is an estimate with a 95 % interval (formulas and sources: docs/COUNTING.md).

>>> from pi_match import Key, TagSet
>>> key = Key.from_bytes(bytes(range(32)))
>>> a, b, c = (TagSet(key, "cn_mobile") for _ in range(3))
>>> _ = a.add(["13800000001", "13800000002", "13800000003"])
>>> _ = b.add(["13800000003", "13800000004"])
>>> _ = c.add(["13800000003", "13800000004", "13800000005"])
>>> r = count_overlaps([a, b, c], names=["A", "B", "C"])
>>> r.union.value, r.in_two_or_more.value, [u.value for u in r.unique]
(5.0, 2.0, [2.0, 0.0, 1.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from . import _core
from ._core import BloomIndex, Estimate, TagSet

__all__ = [
    "Overlaps",
    "Plan",
    "ProbeCount",
    "count_overlaps",
    "overlaps_from_tags",
    "plan",
    "probe_count",
]

MAX_COMBINATION_INPUTS = 6


def _exact(n: float, method: str = "exact") -> Estimate:
    return Estimate(float(n), float(n), float(n), method)


@dataclass
class Overlaps:
    """N-way counts for one identifier kind. `pairwise[i][j]` is the overlap of inputs i and j
    (the diagonal holds each input's own count); `combinations` maps a tuple of input indices to
    the number of items in exactly those inputs (for up to six inputs)."""

    kind: str
    names: list[str]
    counts: list[Estimate]
    pairwise: list[list[Estimate]]
    union: Estimate
    in_two_or_more: Estimate
    unique: list[Estimate]
    combinations: dict[tuple[int, ...], Estimate] = field(default_factory=dict)
    exact: bool = False

    def to_dict(self) -> dict[str, Any]:
        def est(e: Estimate) -> dict[str, Any]:
            return {"estimate": e.value, "low": e.low, "high": e.high,
                    "exact": e.value if e.exact else None, "method": e.method}  # fmt: skip

        return {
            "kind": self.kind,
            "inputs": self.names,
            "union": est(self.union),
            "in_two_or_more": est(self.in_two_or_more),
            "unique": [
                {"input": n, **est(e)} for n, e in zip(self.names, self.unique, strict=True)
            ],
            "counts": [
                {"input": n, **est(e)} for n, e in zip(self.names, self.counts, strict=True)
            ],
            "combinations": [
                {"inputs": [self.names[i] for i in combo], **est(e)}
                for combo, e in sorted(
                    self.combinations.items(), key=lambda kv: (len(kv[0]), kv[0])
                )
            ],
            "exact": self.exact,
        }


def _check(artefacts: Sequence[BloomIndex | TagSet]) -> tuple[str, bool]:
    if len(artefacts) < 2:
        raise _core.PiMatchError("counting across cases needs at least two artefacts")
    if len(artefacts) > 64:
        raise _core.PiMatchError("at most 64 artefacts can be counted together")
    tagsets = [isinstance(a, TagSet) for a in artefacts]
    if any(tagsets) and not all(tagsets):
        raise TypeError("pass all TagSets (exact) or all BloomIndex objects (estimates), not a mix")
    kinds = {a.kind for a in artefacts}
    if len(kinds) != 1:
        raise _core.IncompatibleError(f"artefacts of different kinds: {', '.join(sorted(kinds))}")
    return kinds.pop(), all(tagsets)


def _exactly_terms(n: int, members: tuple[int, ...]) -> list[tuple[int, float]]:
    """Items in exactly the inputs `members`, as a combination of union counts:
    f(S) = −Σ_{T⊆S} (−1)^{|S|−|T|} N(all \\ T), with N(∅) = 0."""
    full = (1 << n) - 1
    terms: dict[int, float] = {}
    for r in range(len(members) + 1):
        for sub in combinations(members, r):
            t = sum(1 << i for i in sub)
            rest = full & ~t
            if rest:
                terms[rest] = terms.get(rest, 0.0) - (-1.0) ** (len(members) - r)
    return [(m, c) for m, c in terms.items() if c != 0]


def _from_members(
    kind: str,
    names: list[str],
    sizes: list[int],
    members: dict[int, int],
    with_combinations: bool,
    method: str = "exact",
) -> Overlaps:
    """Exact Overlaps from {membership mask: distinct items with exactly that membership};
    `method` names where the exact sets came from ("exact": tag sets, "psi": the keyless
    mode's fully blinded sets)."""
    n = len(names)

    def total(pred: Any) -> Estimate:
        return _exact(sum(c for m, c in members.items() if pred(m)), method)

    combos: dict[tuple[int, ...], Estimate] = {}
    if with_combinations and n <= MAX_COMBINATION_INPUTS:
        for mask in range(1, (1 << n)):
            combos[tuple(i for i in range(n) if mask >> i & 1)] = _exact(
                members.get(mask, 0), method
            )
    return Overlaps(
        kind,
        names,
        [_exact(s, method) for s in sizes],
        [[total(lambda m, i=i, j=j: m >> i & 1 and m >> j & 1) for j in range(n)]
         for i in range(n)],
        total(lambda m: True),
        total(lambda m: bin(m).count("1") >= 2),
        [total(lambda m, i=i: m == 1 << i) for i in range(n)],
        combos,
        True,
    )  # fmt: skip


def count_overlaps(
    artefacts: Sequence[BloomIndex | TagSet],
    names: Sequence[str] | None = None,
    *,
    with_combinations: bool = True,
) -> Overlaps:
    """Pairwise overlaps, the union (distinct victims across all), victims in two or more
    inputs and victims unique to each, for artefacts of one key and kind."""
    kind, exact = _check(artefacts)
    n = len(artefacts)
    names = list(names) if names is not None else [f"#{i + 1}" for i in range(n)]
    full = (1 << n) - 1
    if exact:
        sets: list[TagSet] = list(artefacts)  # type: ignore[arg-type]
        members = _core.membership_counts(sets)
        return _from_members(kind, names, [len(s) for s in sets], members, with_combinations)
    blooms: list[BloomIndex] = list(artefacts)  # type: ignore[arg-type]

    def lin(terms: list[tuple[int, float]], method: str) -> Estimate:
        return _core.bloom_linear(blooms, terms, method)

    combos: dict[tuple[int, ...], Estimate] = {}
    counts = [b.estimate_count() for b in blooms]
    pairwise = [[counts[i] if i == j else _core.estimate_overlap(blooms[i], blooms[j])
                 for j in range(n)] for i in range(n)]  # fmt: skip
    union = lin([(full, 1.0)], "bloom_union")
    in2 = lin(
        [(full, 1.0 - n)] + [(full ^ (1 << i), 1.0) for i in range(n)], "bloom_in_two_or_more"
    )
    unique = [lin([(full, 1.0), (full ^ (1 << i), -1.0)], "bloom_unique") for i in range(n)]
    if with_combinations and n <= MAX_COMBINATION_INPUTS:
        for r in range(1, n + 1):
            for combo in combinations(range(n), r):
                combos[combo] = lin(_exactly_terms(n, combo), "bloom_combination")
    return Overlaps(kind, names, counts, pairwise, union, in2, unique, combos, False)


def overlaps_from_tags(kind: str, names: Sequence[str], tags: Sequence[Any]) -> Overlaps:
    """Exact N-way counts from arrays of 64-bit tags (as the report holds them, per dataset),
    by the core's k-way merge."""
    import numpy as np

    arrays = [np.ascontiguousarray(t, np.uint64) for t in tags]
    members = _core.tag_membership_counts(arrays)
    sizes = [len(np.unique(a)) for a in arrays]
    return _from_members(kind, list(names), sizes, members, True)


@dataclass
class ProbeCount:
    """How many of my distinct values are in their artefact."""

    estimate: Estimate
    probed: int
    hits: int
    fpr: float

    @property
    def expected_false_positives(self) -> float:
        return self.fpr * max(self.probed - self.estimate.value, 0.0)


def probe_count(index: BloomIndex | TagSet, values: Any) -> ProbeCount:
    """With my raw values, the key (attached to `index`) and their index: how many of my
    distinct valid values are in it, corrected for false positives ((hits − ε·n)/(1 − ε))."""
    est, probed, hits, fpr = index.count_in(values)
    return ProbeCount(est, probed, hits, fpr)


@dataclass
class Plan:
    """Sizing advice for an exchange."""

    recommendation: str  # "bloom", "tagset" or "probe"
    reason: str
    num_blocks: int | None
    bloom_bytes: int | None
    fpr: float | None
    expected_sd: float | None
    tagset_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build_options(capacity: int, num_blocks: int) -> tuple[int, float]:
    """`(capacity, fpr)` for `build` that lay out exactly `num_blocks` blocks: the rate that
    layout reaches at `capacity`, written with as few digits as still give the layout back."""
    rate = _core.expected_fpr(capacity, num_blocks, 2)
    for digits in (2, 3, 4, 6, 9, 17):
        printed = float(f"{rate:.{digits}e}")
        if _core.plan_layout(capacity, printed)[0] == num_blocks:
            return capacity, printed
    return capacity, rate


def plan(
    sizes: Sequence[int], min_overlap: int = 0, *, precision: float = 0.5,
    fpr: float | None = None,
) -> Plan:  # fmt: skip
    """The smallest Bloom index that measures an overlap of `min_overlap` between the two
    largest lists within ±`precision` (95 % interval half-width relative to the overlap) — and,
    with `fpr`, also probes at that false-positive rate — or the advice that only exact tag
    sets or probing will do. With one size, the index that probes at `fpr` (default 1e-6).

    >>> plan([1_000_000, 500_000], 100_000).recommendation
    'bloom'
    >>> plan([100_000_000, 100_000_000], 50).recommendation
    'tagset'
    """
    if not sizes or min(sizes) <= 0:
        raise _core.PiMatchError("plan needs list sizes of at least 1")
    if len(sizes) == 1:
        # One list, to be probed by others: size it for the false-positive rate alone.
        rate = fpr if fpr is not None else 1e-6
        blocks, _ = _core.plan_layout(sizes[0], rate)
        reached = _core.expected_fpr(sizes[0], blocks, 2)
        return Plan("bloom", f"{32 * blocks:,}-byte index for probing {sizes[0]:,} values at a "
                    f"false-positive rate of {reached:.1e}", blocks, 32 * blocks, reached, None,
                    8 * sizes[0])  # fmt: skip
    if min_overlap <= 0:
        raise _core.PiMatchError("plan needs a positive overlap to compare lists")
    na, nb = sorted(sizes)[-2:]
    tagset_bytes = 8 * max(sizes)
    min_blocks = _core.plan_layout(max(sizes), fpr)[0] if fpr is not None else 1
    for log2 in range(0, 37):
        blocks = 1 << log2
        if blocks < min_blocks:
            continue
        sd = _core.expected_overlap_sd(na, nb, min_overlap, blocks, 2)
        if 1.96 * sd <= precision * min_overlap:
            size = 32 * blocks
            fpr = _core.expected_fpr(max(sizes), blocks, 2)
            if size > tagset_bytes:
                return Plan("tagset", f"a Bloom index precise enough would take {size:,} bytes, "
                            f"more than an exact tag set ({tagset_bytes:,} bytes)", blocks, size,
                            fpr, sd, tagset_bytes)  # fmt: skip
            why = (f"{size:,}-byte indices measure an overlap of {min_overlap:,} "
                   f"within ±{1.96 * sd:,.0f} (95 %)")  # fmt: skip
            return Plan("bloom", why, blocks, size, fpr, sd, tagset_bytes)
    return Plan("tagset", "no Bloom index up to 2 TiB is precise enough; exchange exact tag sets "
                "or probe with the raw list", None, None, None, math.inf, tagset_bytes)  # fmt: skip


@dataclass
class Comparison:
    """What `pi-match compare` reports for a list of artefacts (see `compare`)."""

    names: list[str]
    #: Pairwise overlaps, one per pair of inputs and kind they share.
    pairs: list[dict[str, Any]]
    #: Per kind every input has: the N-way counts.
    overlaps: list[Overlaps]
    #: Why some counts are estimates although some inputs are exact, and the like.
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        kinds = [ov.to_dict() for ov in self.overlaps]
        data: dict[str, Any] = {"pairs": self.pairs, "kinds": kinds, "notes": self.notes}
        for k in kinds:
            # The per-kind totals also sit beside "pairs" under the kind's name.
            data[k["kind"]] = {q: k[q] for q in ("union", "in_two_or_more", "unique")}
        return data


def compare(artefacts: Sequence[Any], names: Sequence[str] | None = None) -> Comparison:
    """Overlaps of artefacts made with one key (`pi_match.Artefact`s): every pairwise overlap
    per shared kind, and per kind all share the distinct union, those in two or more and those
    unique to each. Exact from tag sets when every input has one for the kind, otherwise from
    the Bloom indices — and then `notes` says which inputs lacked a tag set.

    >>> key = _core.Key.from_bytes(bytes(range(32)))
    >>> a, b = TagSet(key, "cn_ric"), TagSet(key, "cn_ric")
    >>> _ = a.add(["11010519491231002X"]); _ = b.add(["11010519491231002x", "440305199003071236"])
    >>> from pi_match import Artefact
    >>> compare([Artefact([a]), Artefact([b])], ["A", "B"]).pairs[0]["exact"]
    1.0
    """
    names = list(names or [f"input {i + 1}" for i in range(len(artefacts))])
    if len(artefacts) < 2:
        raise _core.PiMatchError("compare needs at least two artefacts")
    for n, a in zip(names[1:], artefacts[1:], strict=True):
        if a.key_id != artefacts[0].key_id:
            raise _core.KeyMismatchError(
                f"{n} was made with key id {a.key_id} but {names[0]} with key id "
                f"{artefacts[0].key_id}: artefacts of different keys (different joint "
                "operations) cannot be combined"
            )
    secs = [a.by_kind() for a in artefacts]
    pairs, unmatched = [], []
    for (na, a), (nb, b) in combinations(list(zip(names, secs, strict=True)), 2):
        for kind in sorted(set(a) & set(b)):
            if "tagset" in a[kind] and "tagset" in b[kind]:
                e = _core.estimate_overlap(a[kind]["tagset"], b[kind]["tagset"])
            elif "bloom" in a[kind] and "bloom" in b[kind]:
                e = _core.estimate_overlap(a[kind]["bloom"], b[kind]["bloom"])
            else:
                unmatched.append(f"{na} holds {kind} only as {' and '.join(a[kind])} and {nb} "
                                 f"only as {' and '.join(b[kind])}")  # fmt: skip
                continue
            pairs.append({"a": na, "b": nb, "kind": kind, "estimate": e.value, "low": e.low,
                          "high": e.high, "exact": e.value if e.exact else None,
                          "method": e.method})  # fmt: skip
    if not pairs:
        if unmatched:
            raise _core.IncompatibleError(
                "nothing to compare: " + "; ".join(unmatched) + " (a tag set compares only with "
                "tag sets and a Bloom index with Bloom indices; rebuild with the same --exact)"
            )
        raise _core.IncompatibleError("these artefacts share no identifier kind to compare")
    overlaps, notes = [], []
    for kind in sorted(set.intersection(*(set(s) for s in secs))):
        exact = all("tagset" in s[kind] for s in secs)
        if not exact and not all("bloom" in s[kind] for s in secs):
            continue
        if not exact and any("tagset" in s[kind] for s in secs):
            # Some inputs are exact, not all: a tag set only compares with tag sets.
            lacking = [n for n, s in zip(names, secs, strict=True) if "tagset" not in s[kind]]
            notes.append(f"[{kind}] estimates from the Bloom indices: {', '.join(lacking)} "
                         f"{'has' if len(lacking) == 1 else 'have'} no exact tag set (build "
                         "it with --exact for exact counts)")  # fmt: skip
        picked = [s[kind]["tagset" if exact else "bloom"] for s in secs]
        overlaps.append(count_overlaps(picked, names))
    return Comparison(names, pairs, overlaps, notes)
