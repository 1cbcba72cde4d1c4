"""Which column holds which identifier: `--field KIND=COLUMN` when given, otherwise a sample of
rows decides by the share of values that validate as each kind, helped by common Chinese and
English header names. What was chosen, and why, is reported."""

from __future__ import annotations

from dataclasses import dataclass

from .. import _core
from .base import InputError, Source

HEADER_HINTS = {
    "cn_ric": ["身份证号", "身份证号码", "身份证", "证件号码", "证件号", "公民身份号码", "身份号码",
               "idcard", "id_card", "idno", "id_no", "idnumber", "ctfid", "sfz", "sfzh"],
    "cn_mobile": ["手机", "手机号", "手机号码", "联系电话", "电话", "联系方式", "mobile", "phone",
                  "cellphone", "tel", "mobilephone"],
    "email": ["邮箱", "电子邮件", "电子邮箱", "邮件", "email", "e_mail", "mail"],
    "bank_card": ["银行卡号", "银行卡", "银行账号", "卡号", "bank_card", "bankcard", "card_no",
                  "cardno", "account"],
}  # fmt: skip
KINDS_DETECTED = ("cn_ric", "cn_mobile", "email", "bank_card")
SAMPLE = 2000


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch not in " _-.:：")


@dataclass
class Detection:
    kind: str
    column: str
    share: float
    sampled: int
    header_match: bool

    def why(self) -> str:
        parts = [f"{self.share:.0%} of {self.sampled} sampled values are valid {self.kind}"]
        if self.header_match:
            parts.append(f"header {self.column!r} is a known {self.kind} name")
        return "; ".join(parts)


def detect_columns(source: Source) -> list[Detection]:
    """Pick at most one column per kind from a sample of the first rows."""
    batch = next(iter(source.batches()), None)
    if batch is None:
        return []
    found: list[Detection] = []
    used: set[str] = set()
    scores = []
    for col in source.columns:
        values = batch.column(col).slice(0, SAMPLE)
        for kind in KINDS_DETECTED:
            _, reasons = _core.canonicalize_with_reasons(kind, values)
            present = [r for r in reasons if r not in ("empty", "placeholder")]
            if not present:
                continue
            share = sum(r is None for r in present) / len(present)
            hint = _norm(col) in {_norm(h) for h in HEADER_HINTS[kind]}
            if share >= 0.5 or (hint and share >= 0.2):
                scores.append(
                    (share + (0.25 if hint else 0), Detection(kind, col, share, len(present), hint))
                )
    for _, d in sorted(scores, key=lambda x: -x[0]):
        if d.kind not in {f.kind for f in found} and d.column not in used:
            found.append(d)
            used.add(d.column)
    return sorted(found, key=lambda d: source.columns.index(d.column))


def choose_fields(source: Source, specs: list[str]) -> list[tuple[str, str]]:
    """`KIND=COLUMN` specs (COLUMN a header name or a 1-based number) to (kind, column)."""
    out = []
    for spec in specs:
        kind, sep, ref = spec.partition("=")
        kind = kind.strip()
        if not sep or not ref:
            raise InputError(
                f"--field {spec!r}: write KIND=COLUMN, e.g. cn_ric=身份证号 or cn_ric=2"
            )
        if kind not in _core.KINDS:
            raise InputError(
                f"--field {spec!r}: unknown kind {kind!r}; kinds are {', '.join(_core.KINDS)}"
            )
        out.append((kind, source.resolve(ref.strip())))
    kinds = [k for k, _ in out]
    if len(set(kinds)) != len(kinds):
        raise InputError("each kind may be given once with --field (one column per kind)")
    return out
