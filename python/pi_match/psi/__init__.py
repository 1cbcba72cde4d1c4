"""The keyless mode: exact shared-victim counts among agencies that share no key.

Each party draws its own secret scalar for the operation (`PsiSecret`, kept in a 0600 file,
never sent). It hashes its canonical identifiers to the ristretto255 group and blinds them
(`init`); every set then travels to every other party, who blinds it once more (`blind`);
once all have, the sets — K·H(x) with K the product of every scalar, truncated to 64 bits —
can be counted by anyone (`count`), exactly, with the answers `pi_match.count.compare` gives
for tag sets and `method = "psi"`. No party, and no coalition missing one party, can test a
guess offline: evaluating K·H(x) needs every scalar. Messages are files (docs/PSI.md).

>>> from pi_match import psi
>>> parties = ["A", "B"]
>>> a = psi.PsiSecret.generate("op-17", "A", parties)
>>> b = psi.PsiSecret.generate("op-17", "B", parties)
>>> ma, _ = psi.init(a, {"cn_mobile": ["13800000001", "13800000002"]})
>>> mb, _ = psi.init(b, {"cn_mobile": ["138 0000 0002", "13800000003"]})
>>> ma, mb = psi.blind(ma, b), psi.blind(mb, a)      # each set blinded by the other party
>>> psi.count([ma, mb]).pairs[0]["exact"]
1.0

Semi-honest security: see the README's "Security model" and docs/PSI.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from .. import _core
from .._core import AddReport, PsiFirstPass, PsiMessage, PsiSecret
from ..count import Comparison, _from_members

__all__ = ["PsiFirstPass", "PsiMessage", "PsiSecret", "blind", "count", "first_message", "init"]


def first_message(secret: PsiSecret, passes: Sequence[PsiFirstPass]) -> PsiMessage:
    """This party's first message from its first passes (one per kind)."""
    return _core.psi_first_message(secret, list(passes))


def init(
    secret: PsiSecret,
    values: Mapping[str, Any],
    *,
    canon_version: Mapping[str, int] | None = None,
) -> tuple[PsiMessage, dict[str, AddReport]]:
    """This party's first message from {kind: values} (lists, numpy or Arrow arrays), blinded
    once, and per kind the `AddReport` of its values (valid, missing, rejected by reason)."""
    reports, passes = {}, []
    for kind, vals in values.items():
        p = PsiFirstPass(kind, canon_version=(canon_version or {}).get(kind))
        reports[kind] = p.add(secret, vals)
        passes.append(p)
    return first_message(secret, passes), reports


def blind(message: PsiMessage, secret: PsiSecret, *, max_items: int | None = None) -> PsiMessage:
    """`message` blinded with `secret`'s scalar too. Refused for another operation, a message
    this party has already blinded, or (with `max_items`) a set larger than the operation
    allows; once every party has blinded it, its sets are truncated to 64 bits."""
    return _core.psi_blind(message, secret, max_items=max_items)


def count(messages: Sequence[PsiMessage], *, with_combinations: bool = True) -> Comparison:
    """Exact overlaps among fully blinded messages, named by their parties: every pair per
    shared kind, and per kind all share the union, those in two or more and those unique to
    each (`method = "psi"`)."""
    msgs = list(messages)
    _core.psi_check_countable(msgs)
    names = [m.origin for m in msgs]
    tags = [{k: m.final_tags(k) for k in m.kinds} for m in msgs]
    kinds = sorted(set().union(*(set(t) for t in tags)))
    # One k-way merge per kind over the messages that hold it: every pair and N-way count
    # is a sum over its membership masks.
    held = {k: [i for i, t in enumerate(tags) if k in t] for k in kinds}
    members = {k: _core.tag_membership_counts([tags[i][k] for i in held[k]]) for k in kinds}

    def shared(kind: str, a: int, b: int) -> float:
        bit_a, bit_b = 1 << held[kind].index(a), 1 << held[kind].index(b)
        return float(sum(n for m, n in members[kind].items() if m & bit_a and m & bit_b))

    pairs = []
    for a, b in combinations(range(len(msgs)), 2):
        for kind in kinds:
            if kind in tags[a] and kind in tags[b]:
                n = shared(kind, a, b)
                pairs.append({"a": names[a], "b": names[b], "kind": kind, "estimate": n,
                              "low": n, "high": n, "exact": n, "method": "psi"})  # fmt: skip
    if not pairs:
        raise _core.IncompatibleError("these messages share no identifier kind to count")
    overlaps, notes = [], []
    for kind in kinds:
        if len(held[kind]) == len(msgs):
            sizes = [len(t[kind]) for t in tags]
            overlaps.append(
                _from_members(kind, names, sizes, members[kind], with_combinations, "psi")
            )
        else:
            lacking = [n for n, t in zip(names, tags, strict=True) if kind not in t]
            notes.append(f"[{kind}] only pairwise: {', '.join(lacking)} sent no {kind} set")
    return Comparison(names, pairs, overlaps, notes)
