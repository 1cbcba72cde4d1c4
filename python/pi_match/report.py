"""The statutory count report (法释〔2017〕10号, arts. 5, 6 and 11): a counting aid, not a legal
conclusion.

A case manifest (TOML) lists the datasets, the information category the prosecutor assigns to
each, and whether the suspect obtained it or sold / provided it to named buyers; every key is
documented in docs/REPORT.md, and `pi-match report --example DIR` writes a commented one:

```toml
[case]
name = "2026 某市 侵犯公民个人信息案"
insider = false              # obtained in the course of duties: thresholds halved
key = "op2026.key"
dedup = "person"             # rows sharing any identifier are one item (or "identifier")
illegal_gains = 4000         # 违法所得, yuan (optional)

[[dataset]]
path = "seized/hotel.csv"
fields = { cn_ric = "身份证号", cn_mobile = "手机" }
category = "住宿信息"          # or: tier = 500
role = "obtained"

[[dataset]]
path = "seized/sold_to_zhang.txt"
fields = { cn_ric = 2 }
delimiter = "----"
header = false
category = "住宿信息"
role = "sold"
buyers = ["张某"]
```

Counting. A category is never guessed: a name not on the art. 5 table (with its usual variants)
stops the report unless the dataset gives `tier`. With `dedup = "person"` (the default) rows
linked by any shared valid identifier — ID number, mobile, e-mail, bank card, across the
datasets of a category — are one item (connected components over keyed tags, in Rust); with
`dedup = "identifier"` a row is identified by its first valid identifier in the order `fields`
lists them. Per category, count = distinct items obtained and never sold + Σ over buyers of the
distinct items sold or provided to that buyer (art. 11). The ratio sum Σ countᵢ/Tᵢ (T = 50, 500
or 5,000, halved for insiders) reaches 情节严重 at 1 and 情节特别严重 at 10 (art. 5 (三)–(五),
(八)); illegal gains of 5,000 / 50,000 yuan (halved for insiders) reach them too (art. 5 (七)).
With `purpose = "legitimate_business"` (art. 6) tier-5,000 information bought for lawful
business does not establish 情节严重 by count; a profit of 50,000 yuan does.
"""

from __future__ import annotations

import base64
import html
import os
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._core import Key
from .build import MISSING, OK, REASONS, SectionStats
from .io import ReadOptions, open_source
from .outputs import require_regular

#: Art. 5 categories: canonical name -> (tier, the item of art. 5 it comes from).
CATEGORIES: dict[str, tuple[int, str]] = {
    "行踪轨迹信息": (50, "第五条第一款第三项"),
    "通信内容": (50, "第五条第一款第三项"),
    "征信信息": (50, "第五条第一款第三项"),
    "财产信息": (50, "第五条第一款第三项"),
    "住宿信息": (500, "第五条第一款第四项"),
    "通信记录": (500, "第五条第一款第四项"),
    "健康生理信息": (500, "第五条第一款第四项"),
    "交易信息": (500, "第五条第一款第四项"),
    "其他信息": (5000, "第五条第一款第五项"),
}
#: Names written in case files for each category: the art. 5 wording with and without 信息,
#: common variants, English.
VARIANTS: dict[str, list[str]] = {
    "行踪轨迹信息": ["行踪轨迹", "行踪", "轨迹", "定位", "位置", "location", "track", "tracks",
                   "trajectory", "whereabouts"],
    "通信内容": ["通讯内容", "通信内容信息", "通讯内容信息", "communication_content",
              "communication content", "message content"],
    "征信信息": ["征信", "信用", "信用信息", "credit", "credit_report", "credit information"],
    "财产信息": ["财产", "银行账户", "银行账户信息", "账户信息", "property", "bank_account",
              "bank account", "assets"],
    "住宿信息": ["住宿", "酒店住宿", "酒店住宿信息", "开房记录", "开房信息", "accommodation",
              "hotel", "lodging"],
    "通信记录": ["通讯记录", "通信记录信息", "通讯记录信息", "通话记录", "communication_records",
              "communication records", "call_records", "call records"],
    "健康生理信息": ["健康生理", "健康", "健康信息", "生理", "生理信息", "病历", "病历信息",
                   "health", "medical", "medical_records"],
    "交易信息": ["交易", "购物", "购物信息", "快递", "快递信息", "transaction", "transactions",
              "shopping", "delivery", "orders"],
    "其他信息": ["其他", "其它", "其它信息", "other"],
}  # fmt: skip
TIER_NAMES = {50: "第一档信息", 500: "第二档信息", 5000: "其他信息"}
GAINS_SERIOUS = 5000.0
PROFIT_SERIOUS_ART6 = 50000.0
DISCLAIMER_ZH = "本报告是计数辅助工具的输出，不构成法律结论；定罪量刑由司法机关依法认定。"
DISCLAIMER_EN = (
    "This report is the output of a counting aid, not a legal conclusion; conviction and "
    "sentencing are for the judicial authorities to decide."
)
KIND_NAMES = {"cn_ric": "身份证号", "cn_mobile": "手机号", "email": "电子邮箱",
              "bank_card": "银行卡号", "raw": "其他标识"}  # fmt: skip


class CaseError(_core.PiMatchError):
    """A case manifest that cannot be used as written."""


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_")


_LOOKUP = {_norm(v): canon for canon, names in VARIANTS.items() for v in [canon, *names]}


def category_of(name: str) -> str | None:
    """The art. 5 category a written name stands for, or None when it is not on the table."""
    return _LOOKUP.get(_norm(name))


def tier_of(category: str) -> int | None:
    """The art. 5 tier of a category name (Chinese, with or without 信息, variants, English);
    None for a name not on the table: the tier-500 list of art. 5 (四) is open ("…等其他可能
    影响人身、财产安全的"), so an unknown name needs an explicit `tier`, never a guess."""
    canon = category_of(category)
    return CATEGORIES[canon][0] if canon else None


def known_categories() -> str:
    return "; ".join(f"{c} ({t})" for c, (t, _) in CATEGORIES.items())


@dataclass
class Dataset:
    path: str
    fields: list[tuple[str, str]]
    options: ReadOptions
    category: str
    tier: int
    role: str
    buyers: list[str]
    written: str = ""  # the category as the case file wrote it
    why: str = ""  # how the tier was decided


@dataclass
class Case:
    name: str
    insider: bool
    key_path: str
    datasets: list[Dataset]
    source: str = ""
    dedup: str = "person"
    illegal_gains: float | None = None
    purpose: str | None = None
    profit: float | None = None


def _amount(case: dict[str, Any], key: str, path: str) -> float | None:
    v = case.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0 or v == float("inf"):
        raise CaseError(f"{path}: [case] {key} must be an amount in yuan, e.g. {key} = 4000")
    return float(v)


def load_case(path: str | os.PathLike[str]) -> Case:
    """Read and check a case manifest; errors name the dataset and the field."""
    path = os.fspath(path)
    require_regular(path, "case file")
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise CaseError(f"{path}: not valid TOML ({e})") from None
    except UnicodeDecodeError:
        raise CaseError(f"{path}: not UTF-8 text; save the case file as UTF-8") from None
    base = os.path.dirname(os.path.abspath(path))
    case = doc.get("case")
    if not isinstance(case, dict):
        raise CaseError(f"{path}: needs a [case] table with name, insider and key")
    for k in ("name", "key"):
        if not isinstance(case.get(k), str):
            raise CaseError(f'{path}: [case] needs {k} = "..."')
    insider = case.get("insider", False)
    if not isinstance(insider, bool):
        raise CaseError(f"{path}: [case] insider must be true or false")
    dedup = case.get("dedup", "person")
    if dedup not in ("person", "identifier"):
        raise CaseError(f'{path}: [case] dedup must be "person" or "identifier", not {dedup!r}')
    purpose = case.get("purpose")
    if purpose not in (None, "legitimate_business"):
        raise CaseError(
            f'{path}: [case] purpose must be "legitimate_business" (art. 6) or left out, '
            f"not {purpose!r}"
        )
    gains, profit = _amount(case, "illegal_gains", path), _amount(case, "profit", path)
    datasets = []
    raw = doc.get("dataset")
    if not isinstance(raw, list) or not raw:
        raise CaseError(f"{path}: needs at least one [[dataset]] table")
    for n, d in enumerate(raw, 1):
        where = f"{path}: dataset {n}"
        if not isinstance(d.get("path"), str):
            raise CaseError(f'{where}: needs path = "..."')
        where = f"{path}: dataset {n} ({d['path']})"
        fields = d.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise CaseError(f'{where}: needs fields = {{ cn_ric = "身份证号" }} (kind = column)')
        for kind in fields:
            if kind not in _core.KINDS:
                raise CaseError(
                    f"{where}: unknown kind {kind!r}; kinds are {', '.join(_core.KINDS)}"
                )
        role = d.get("role", "obtained")
        if role not in ("obtained", "sold"):
            raise CaseError(f'{where}: role must be "obtained" or "sold", not {role!r}')
        buyers = d.get("buyers", [])
        if role == "sold" and (not isinstance(buyers, list) or not buyers
                               or not all(isinstance(b, str) and b for b in buyers)):  # fmt: skip
            raise CaseError(
                f'{where}: a sold dataset needs buyers = ["..."] (art. 11 counts per buyer)'
            )
        if role == "obtained" and buyers:
            raise CaseError(f'{where}: buyers only go with role = "sold"')
        written, tier = d.get("category"), d.get("tier")
        if written is not None and not isinstance(written, str):
            raise CaseError(f'{where}: category must be text, e.g. category = "住宿信息"')
        if tier is not None and (isinstance(tier, bool) or tier not in (50, 500, 5000)):
            raise CaseError(f"{where}: tier must be 50, 500 or 5000")
        if written is None and tier is None:
            raise CaseError(f'{where}: needs category = "住宿信息" (or tier = 50|500|5000)')
        canon = category_of(written) if written is not None else None
        if written is not None and canon is None and tier is None:
            raise CaseError(
                f"{where}: category {written!r} is not on the art. 5 table; give its tier "
                f"explicitly (tier = 50, 500 or 5000) or use a known name: {known_categories()}"
            )
        if canon is not None and tier is not None and CATEGORIES[canon][0] != tier:
            raise CaseError(
                f"{where}: category {written!r} is tier {CATEGORIES[canon][0]}, not {tier}"
            )
        if canon is not None:
            tier, item = CATEGORIES[canon]
            why = f"{written} = {canon}, 法释〔2017〕10号{item}"
            category = canon
        else:
            assert tier is not None  # an unknown category without a tier was refused above
            category = written or TIER_NAMES[tier]
            why = f"tier {tier} given in the case file"
        header = d.get("header")
        if header is not None and not isinstance(header, bool):
            raise CaseError(f"{where}: header must be true or false (unquoted), not {header!r}")
        for opt in ("encoding", "delimiter", "sheet", "format"):
            if d.get(opt) is not None and not isinstance(d.get(opt), str):
                raise CaseError(f'{where}: {opt} must be a string, e.g. {opt} = "..."')
        opts = ReadOptions(encoding=d.get("encoding"), delimiter=d.get("delimiter"),
                           header=header, sheet=d.get("sheet"), format=d.get("format"))  # fmt: skip
        p = d["path"] if os.path.isabs(d["path"]) else os.path.join(base, d["path"])
        datasets.append(Dataset(p, [(k, str(v)) for k, v in fields.items()], opts, category,
                                tier, role, list(buyers), written or "", why))  # fmt: skip
    key_path = case["key"] if os.path.isabs(case["key"]) else os.path.join(base, case["key"])
    return Case(case["name"], insider, key_path, datasets, path, dedup, gains, purpose, profit)


@dataclass
class DatasetCount:
    path: str
    category: str
    role: str
    buyers: list[str]
    rows: int = 0
    missing: int = 0
    invalid: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    valid: int = 0
    distinct: int = 0
    unreadable: int = 0
    encoding: str = ""
    sha256: str = ""
    fields: list[SectionStats] = field(default_factory=list)
    #: The item of each usable row under the identifier rule (its first valid identifier).
    tags: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: Per kind: each row's tag and whether it is valid (for linking persons).
    kind_tags: dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]] = field(
        default_factory=dict
    )

    @property
    def duplicates(self) -> int:
        return self.valid - self.distinct


def count_dataset(
    ds: Dataset, key: Key, progress: Callable[[int], None] | None = None
) -> DatasetCount:
    """Read one dataset: per field the same valid / missing / rejected counts as `build`, per
    row its tags for linking, and its identifier-rule item."""
    src = open_source(ds.path, ds.options)
    cols = [(k, src.resolve(c)) for k, c in ds.fields]
    src.require([c for _, c in cols])
    out = DatasetCount(ds.path, ds.category, ds.role, ds.buyers, encoding=src.encoding,
                       sha256=str(src.facts.get("sha256", "")))  # fmt: skip
    out.fields = [SectionStats(k, c) for k, c in cols]
    idents, tag_parts, ok_parts = [], {k: [] for k, _ in cols}, {k: [] for k, _ in cols}  # type: ignore[var-annotated]
    for batch in src.batches():
        n = len(batch)
        ident = np.zeros(n, np.uint64)
        found = np.zeros(n, bool)
        any_present = np.zeros(n, bool)
        first_reason = np.zeros(n, np.uint8)
        for (kind, col), stats in zip(cols, out.fields, strict=True):
            tags, codes = _core.row_tags(key, kind, batch.column(col))
            codes = np.asarray(codes, np.uint8)
            stats.absorb_codes(codes)
            valid = codes == OK
            tag_parts[kind].append(tags)
            ok_parts[kind].append(valid)
            new = valid & ~found
            ident[new] = tags[new]
            found |= valid
            present = ~valid & ~np.isin(codes, list(MISSING))
            first_reason = np.where((first_reason == 0) & present, codes, first_reason)
            any_present |= present | valid
        out.rows += n
        out.valid += int(found.sum())
        out.missing += int((~any_present).sum())
        bad = any_present & ~found
        out.invalid += int(bad.sum())
        for code, cnt in zip(*np.unique(first_reason[bad], return_counts=True), strict=True):
            name = REASONS[int(code)]
            out.invalid_by_reason[name] = out.invalid_by_reason.get(name, 0) + int(cnt)
        idents.append(ident[found])
        if progress:
            progress(n)
    out.unreadable = src.unreadable
    out.tags = np.unique(np.concatenate(idents)) if idents else np.zeros(0, np.uint64)
    out.distinct = len(out.tags)
    for kind, _ in cols:
        t = np.concatenate(tag_parts[kind]) if tag_parts[kind] else np.zeros(0, np.uint64)
        v = np.concatenate(ok_parts[kind]) if ok_parts[kind] else np.zeros(0, bool)
        out.kind_tags[kind] = (t, v)
    return out


def _union(arrays: list[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, np.uint64)


def person_items(members: list[DatasetCount]) -> list[npt.NDArray[np.uint64]]:
    """Per dataset of one category, the distinct persons among its rows: rows linked by any
    shared valid identifier, across the datasets, are one person."""
    n = sum(c.rows for c in members)
    kinds = sorted({k for c in members for k in c.kind_tags})
    tags, valid = [], []
    for kind in kinds:
        t = np.zeros(n, np.uint64)
        v = np.zeros(n, bool)
        at = 0
        for c in members:
            if kind in c.kind_tags:
                kt, kv = c.kind_tags[kind]
                t[at : at + c.rows], v[at : at + c.rows] = kt, kv
            at += c.rows
        tags.append(t)
        valid.append(v)
    labels = _core.link_components(n, tags, valid)
    out, at = [], 0
    for c in members:
        part = labels[at : at + c.rows]
        out.append(np.unique(part[part != np.iinfo(np.uint64).max]))
        at += c.rows
    return out


def art11_count(members: list[DatasetCount], items: list[npt.NDArray[np.uint64]]) -> dict[str, Any]:
    """Art. 11 over one category: obtained then sold counts once, sold to different buyers
    counts once per buyer."""
    obtained = _union([i for c, i in zip(members, items, strict=True) if c.role == "obtained"])
    buyers = sorted({b for c in members for b in c.buyers})
    per_buyer = {
        b: _union([i for c, i in zip(members, items, strict=True) if b in c.buyers]) for b in buyers
    }
    sold_any = _union(list(per_buyer.values()))
    never_sold = np.setdiff1d(obtained, sold_any, assume_unique=True)
    units = len(obtained) + sum(len(v) for v in per_buyer.values())
    return {
        "count": len(never_sold) + sum(len(v) for v in per_buyer.values()),
        "obtained_distinct": len(obtained),
        "obtained_then_sold": int(len(obtained) - len(never_sold)),
        "obtained_never_sold": len(never_sold),
        "sold_per_buyer": {b: len(v) for b, v in per_buyer.items()},
        "units": units,
    }


def count_case(
    case: Case, key: Key | None = None, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Count every dataset and category; returns the report as a JSON-ready dict."""
    key = key or Key.load(case.key_path)
    counts = [count_dataset(d, key, progress) for d in case.datasets]
    categories = []
    ratio_sum = 0.0
    art6 = case.purpose == "legitimate_business"
    for cat in dict.fromkeys(c.category for c in counts):
        members = [c for c in counts if c.category == cat]
        tier = next(d.tier for d in case.datasets if d.category == cat)
        threshold = tier / 2 if case.insider else tier
        by_id = art11_count(members, [c.tags for c in members])
        by_person = art11_count(members, person_items(members))
        chosen = by_person if case.dedup == "person" else by_id
        count = chosen["count"]
        valid_units = sum(c.valid for c in members if c.role == "obtained") + sum(
            c.valid for b in chosen["sold_per_buyer"] for c in members if b in c.buyers
        )
        counted = not (art6 and tier == 5000)
        ratio = count / threshold
        if counted:
            ratio_sum += ratio
        categories.append({
            "category": cat,
            "written": sorted({d.written for d in case.datasets if d.category == cat} - {""}),
            "tier": tier,
            "why": next(d.why for d in case.datasets if d.category == cat),
            "threshold": threshold,
            "datasets": [c.path for c in members],
            "rows": sum(c.rows for c in members),
            "missing": sum(c.missing for c in members),
            "invalid": sum(c.invalid for c in members),
            "invalid_by_reason": _merge([c.invalid_by_reason for c in members]),
            "unreadable": sum(c.unreadable for c in members),
            "duplicates": valid_units - chosen["units"],
            "obtained_distinct": chosen["obtained_distinct"],
            "obtained_then_sold": chosen["obtained_then_sold"],
            "obtained_never_sold": chosen["obtained_never_sold"],
            "sold_per_buyer": chosen["sold_per_buyer"],
            "count": count,
            "count_person": by_person["count"],
            "count_identifier": by_id["count"],
            "ratio": ratio,
            "counted_for_standard": counted,
        })  # fmt: skip
    gains_t = GAINS_SERIOUS / 2 if case.insider else GAINS_SERIOUS
    gains = case.illegal_gains
    gains_serious = gains is not None and gains >= gains_t
    gains_especially = gains is not None and gains >= 10 * gains_t
    profit = case.profit if case.profit is not None else gains
    profit_serious = art6 and profit is not None and profit >= PROFIT_SERIOUS_ART6
    serious_by = [w for w, hit in (("count", ratio_sum >= 1), ("gains", gains_serious),
                                   ("profit", profit_serious)) if hit]  # fmt: skip
    especially_by = [w for w, hit in (("count", ratio_sum >= 10), ("gains", gains_especially))
                     if hit]  # fmt: skip
    report: dict[str, Any] = {
        "case": case.name,
        "insider": case.insider,
        "dedup": case.dedup,
        "purpose": case.purpose,
        "key_id": key.id,
        "pi_match_version": _core.__version__,
        "datasets": [
            {
                "path": c.path,
                "category": d.written or c.category,
                "counted_as": c.category,
                "tier": d.tier,
                "why": d.why,
                "role": c.role,
                "buyers": c.buyers,
                "records": c.rows + c.unreadable,
                "rows": c.rows,
                "missing": c.missing,
                "invalid": c.invalid,
                "invalid_by_reason": c.invalid_by_reason,
                "rows_without_identifier": c.missing + c.invalid,
                "unreadable": c.unreadable,
                "valid": c.valid,
                "distinct": c.distinct,
                "duplicates": c.duplicates,
                "fields": [
                    {
                        "kind": s.kind,
                        "column": s.column,
                        "rows": s.rows,
                        "valid": s.valid,
                        "missing": s.missing,
                        "rejected": s.rejected,
                        "rejected_by_reason": s.rejected_by_reason,
                    }
                    for s in c.fields
                ],
                "encoding": c.encoding,
                "sha256": c.sha256,
            }  # fmt: skip
            for c, d in zip(counts, case.datasets, strict=True)
        ],
        "categories": categories,
        "ratio_sum": ratio_sum,
        "illegal_gains": gains,
        "gains_serious": gains_serious,
        "gains_especially_serious": gains_especially,
        "profit": profit if art6 else None,
        "serious": bool(serious_by),
        "especially_serious": bool(especially_by),
        "serious_by": serious_by,
        "especially_serious_by": especially_by,
    }
    report["method"] = method_statement(case, report)
    report["disclaimer"] = {"zh": DISCLAIMER_ZH, "en": DISCLAIMER_EN}
    report["_tags"] = {c.path: c.tags for c in counts}
    return report


def _merge(dicts: list[dict[str, int]]) -> dict[str, int]:
    return dict(sum((Counter(d) for d in dicts), Counter()))


def method_statement(case: Case, report: dict[str, Any]) -> dict[str, str]:
    kinds = sorted({k for d in case.datasets for k, _ in d.fields})
    half_zh = "；行为人系在履行职责或提供服务过程中获得，标准减半" if case.insider else ""
    half_en = (
        " The suspect obtained the data in the course of duties, so thresholds are halved."
        if case.insider
        else ""
    )
    if case.dedup == "person":
        dedup_zh = (
            "同一类别的各数据集中，凡共有任一有效识别号码（身份证号、手机号、电子邮箱、银行卡号）的"
            "行视为同一人、记为一条信息（按加密标签求连通分量），避免同一被害人因不同文件中记录的号码"
            "不同而被重复计算；按“首个有效号码”规则得出的条数一并列示"
        )
        dedup_en = (
            "Within a category, rows that share any valid identifier (ID number, mobile, e-mail, "
            "bank card), across its datasets, are one person and one item (connected components "
            "over keyed tags), so a victim recorded with an ID number in one file and a mobile "
            "number in another is not counted twice; the count under the first-valid-identifier "
            "rule is shown beside it"
        )
    else:
        dedup_zh = "每行以字段列表中第一个有效的识别号码认定同一人"
        dedup_en = "Each row is identified by the first valid identifier in the order listed"
    extra_zh = extra_en = ""
    if case.illegal_gains is not None:
        extra_zh += (f"违法所得{case.illegal_gains:,.0f}元，按第五条第一款第七项（五千元）及第二款"
                     "（五万元）判断" + ("，标准减半" if case.insider else "") + "。")  # fmt: skip
        extra_en += (f" Illegal gains of {case.illegal_gains:,.0f} yuan are held against art. 5 "
                     "(七): 5,000 yuan serious, 50,000 especially serious"
                     + (", halved." if case.insider else "."))  # fmt: skip
    if case.purpose == "legitimate_business":
        extra_zh += ("本案为合法经营活动而购买、收受第五条第一款第三项、第四项以外的信息"
                     "（第六条），其条数不据以认定情节严重，"
                     "获利五万元以上的认定为情节严重。")  # fmt: skip
        extra_en += (" The information outside tiers 50 and 500 was bought for lawful business "
                     "(art. 6): its count does not establish 'serious'; a profit of 50,000 yuan "
                     "does.")  # fmt: skip
    zh = (
        f"计数依据法释〔2017〕10号第五条、第六条、第十一条。识别字段：{'、'.join(kinds)}；"
        f"{dedup_zh}。号码先按 pi_match 规范化规则"
        "（全角转半角、去除空格与连接符、身份证号校验位与出生日期校验、15位号码升为18位、手机号统一为"
        "+86格式等）处理。空值与占位符（如“-”“NULL”“\\N”“无”）计为缺失，不计入；校验不通过、"
        "位数不符、被Excel截断或舍入的号码计为无效，不计入，按字段分原因列示；无法解析的行单列。"
        "信息类别由检察人员指定，未列入第五条的名称须明确档次，不作推断。"
        "每一类别的条数 = 非法获取且未出售的不重复条数 + 按每一买方"
        "分别计算的出售或提供的不重复条数（获取后出售的只计一次；向不同买方出售的分别计算）。"
        f"各类别条数除以相应标准（50/500/5000条{half_zh}）后相加，合计达到1为情节严重，达到10为"
        f"情节特别严重。{extra_zh}{DISCLAIMER_ZH}"
    )
    en = (
        "Counted under SPC/SPP Interpretation [2017] No. 10, arts. 5, 6 and 11. Identifier fields: "
        f"{', '.join(kinds)}. {dedup_en}. Identifiers are first canonicalised by pi_match's "
        "published rules (full-width to half-width, spaces and dashes removed, ID check "
        "character and birth date verified, 15-digit IDs upgraded, mobiles as +86...). Empty "
        "values and placeholders ('-', 'NULL', '\\N', '无') are missing and not counted; values "
        "failing validation (checksum, length, Excel's scientific notation or rounding) are "
        "invalid, not counted, and listed by field and reason; unreadable rows are listed "
        "apart. Categories are assigned by the prosecutor; a name not in art. 5 needs an "
        "explicit tier and is never guessed. Per category, count = distinct items obtained and "
        "never sold + the distinct items sold or provided to each buyer, buyer by buyer "
        "(obtained then sold counts once; sold to different buyers counts once per buyer). Each "
        f"category's count is divided by its threshold (50, 500 or 5,000 items).{half_en} The "
        "sum reaching 1 meets the 'serious' standard, 10 the 'especially serious' one."
        f"{extra_en} " + DISCLAIMER_EN
    )
    return {"zh": zh, "en": en}


# ---- rendering ----------------------------------------------------------------------------


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report without internal fields (for JSON)."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


YES = {True: "是 / yes", False: "否 / no"}


def _standard_line(report: dict[str, Any]) -> str:
    def why(by: list[str]) -> str:
        names = {"count": "条数 count", "gains": "违法所得 illegal gains", "profit": "获利 profit"}
        return f" ({', '.join(names[b] for b in by)})" if by else ""

    return (
        f"Σ nᵢ/Tᵢ = {report['ratio_sum']:.3f} — 情节严重 serious: {YES[report['serious']]}"
        f"{why(report['serious_by'])}; 情节特别严重 especially serious: "
        f"{YES[report['especially_serious']]}{why(report['especially_serious_by'])}"
    )


def tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's tables (title, header, rows of cell text): one source for Markdown, HTML."""
    cats = []
    for c in report["categories"]:
        both = (
            f"{c['count']:,}" if c["count_person"] == c["count_identifier"]
            else f"{c['count']:,} (person {c['count_person']:,} / identifier "
            f"{c['count_identifier']:,})"
        )  # fmt: skip
        cats.append([
            c["category"], f"{c['tier']}", f"{c['threshold']:g}", f"{c['rows']:,}",
            f"{c['missing']:,}", f"{c['invalid']:,}", f"{c['unreadable']:,}",
            f"{c['duplicates']:,}", f"{c['obtained_then_sold']:,}", both,
            f"{c['ratio']:.3f}" + ("" if c["counted_for_standard"] else " (art. 6: not counted)"),
        ])  # fmt: skip
    datasets = []
    for d in report["datasets"]:
        datasets.append([
            os.path.basename(d["path"]), d["category"], f"{d['tier']}", d["why"], d["role"],
            ", ".join(d["buyers"]) or "—", f"{d['records']:,}", f"{d['unreadable']:,}",
            f"{d['rows_without_identifier']:,}", f"{d['valid']:,}", f"{d['distinct']:,}",
        ])  # fmt: skip
    fields = []
    for d in report["datasets"]:
        for f in d["fields"]:
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(f["rejected_by_reason"].items()))
            fields.append([
                os.path.basename(d["path"]), f"{KIND_NAMES.get(f['kind'], f['kind'])} {f['kind']}",
                f["column"], f"{f['rows']:,}", f"{f['valid']:,}", f"{f['missing']:,}",
                f"{f['rejected']:,}" + (f" ({reasons})" if reasons else ""),
            ])  # fmt: skip
    hashes = [[os.path.basename(d["path"]), d["encoding"], d["sha256"]] for d in report["datasets"]]
    out = [
        ("按类别 / By category",
         ["类别 category", "档 tier", "标准 threshold", "行 rows", "缺失 missing",
          "无效 invalid", "不可读 unreadable", "重复 duplicates",
          "获取后出售 obtained then sold", "条数 count", "比例 ratio"], cats),
        ("数据集 / Datasets",
         ["文件 file", "类别 category (as written)", "档 tier", "依据 why", "角色 role",
          "买方 buyers", "记录 records", "不可读 unreadable", "无有效号码 no usable identifier",
          "有效 valid", "不重复 distinct"], datasets),
        ("字段 / Identifier fields (as pi-match build counts them)",
         ["文件 file", "字段 kind", "列 column", "行 rows", "有效 valid", "缺失 missing",
          "无效 rejected (原因 reason)"], fields),
        ("输入文件 / Input files", ["文件 file", "编码 encoding", "SHA-256"], hashes),
    ]  # fmt: skip
    buyers = [
        [c["category"], b, f"{n:,}"]
        for c in report["categories"]
        for b, n in c["sold_per_buyer"].items()
    ]
    if buyers:
        out.insert(1, ("按买方 / Per buyer (art. 11)", ["类别 category", "买方 buyer",
                                                     "条数 count"], buyers))  # fmt: skip
    return out


def paragraphs(report: dict[str, Any]) -> list[str]:
    lines = [
        f"pi_match {report['pi_match_version']}, key id {report['key_id']}; "
        f"履职获取 insider: {YES[report['insider']]}; 去重 dedup: {report['dedup']}",
    ]
    if report["illegal_gains"] is not None:
        lines.append(
            f"违法所得 illegal gains: {report['illegal_gains']:,.0f} 元 — 情节严重 serious: "
            f"{YES[report['gains_serious']]}; 情节特别严重 especially serious: "
            f"{YES[report['gains_especially_serious']]}"
        )
    for c in report["categories"]:
        if c["count_person"] != c["count_identifier"]:
            used = report["dedup"]
            why = (
                'dedup = "person", the default'
                if used == "person"
                else 'dedup = "identifier" in the case file'
            )
            lines.append(
                f"{c['category']}: {c['count_person']:,} persons (rows linked by any shared "
                f"identifier) vs {c['count_identifier']:,} by first identifier; the report uses "
                f"{used} ({why})."
            )
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    out = [
        f"# 侵犯公民个人信息案 条数统计 / Statutory count report: {report['case']}",
        "",
        f"> {report['disclaimer']['zh']}  ",
        f"> {report['disclaimer']['en']}",
        "",
        *[p + "\n" for p in paragraphs(report)],
        f"**{_standard_line(report)}**",
        "",
    ]
    for title, head, rows in tables(report):
        out += [f"## {title}", "", "| " + " | ".join(head) + " |",
                "|" + "---|" * len(head)]  # fmt: skip
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        out.append("")
    out += ["## 计数方法 / Method", "", report["method"]["zh"], "", report["method"]["en"], ""]
    return "\n".join(out)


PRINT_CSS = (
    "@page{size:A4;margin:15mm 12mm}"
    "body{font-family:'WenQuanYi Zen Hei','Noto Sans CJK SC','Source Han Sans SC',"
    "'WenQuanYi Micro Hei','SimHei',"
    "'Microsoft YaHei','PingFang SC',sans-serif;max-width:80em;margin:2em auto;color:#111;"
    "font-size:10.5pt}"
    "table{border-collapse:collapse;margin:.6em 0 1.2em;width:100%}"
    "td,th{border:1px solid #999;padding:.25em .45em;text-align:right;vertical-align:top}"
    "td:first-child,th:first-child{text-align:left}th{background:#eee}"
    "td.hash{font-family:monospace;font-size:8.5pt;word-break:break-all;text-align:left}"
    ".note{background:#fff4d6;padding:.6em}.standard{font-weight:bold;font-size:12pt}"
    "img{max-width:100%}"
    "@media print{body{margin:0;max-width:none}thead{display:table-header-group}"
    "tr,img,figure{page-break-inside:avoid;break-inside:avoid}h2{page-break-after:avoid}}"
)


def to_html(report: dict[str, Any], figures: list[bytes] | None = None) -> str:
    """The report as a self-contained HTML page (figures embedded, a print stylesheet for A4
    with repeating table headers)."""
    e = html.escape
    title = "侵犯公民个人信息案 条数统计 / Statutory count report: " + report["case"]
    note = f"{e(report['disclaimer']['zh'])}<br>{e(report['disclaimer']['en'])}"
    body = [f"<h1>{e(title)}</h1>", f"<p class='note'>{note}</p>"]
    body += [f"<p>{e(p)}</p>" for p in paragraphs(report)]
    body.append(f"<p class='standard'>{e(_standard_line(report))}</p>")
    for title, head, rows in tables(report):
        hashes = head[-1] == "SHA-256"

        last = len(head) - 1 if hashes else -1
        trs = "".join(
            "<tr>"
            + "".join(
                f"<td class='hash'>{e(c)}</td>" if i == last else f"<td>{e(c)}</td>"
                for i, c in enumerate(r)
            )
            + "</tr>"
            for r in rows
        )
        ths = "".join(f"<th>{e(h)}</th>" for h in head)
        body.append(f"<h2>{e(title)}</h2><table><thead><tr>{ths}</tr></thead><tbody>{trs}"
                    "</tbody></table>")  # fmt: skip
    for png in figures or []:
        b64 = base64.b64encode(png).decode()
        body.append(f"<figure><img alt='overlaps' src='data:image/png;base64,{b64}'></figure>")
    body += ["<h2>计数方法 / Method</h2>", f"<p>{e(report['method']['zh'])}</p>",
             f"<p>{e(report['method']['en'])}</p>"]  # fmt: skip
    return ("<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
            f"<title>{e(report['case'])}</title><style>{PRINT_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")  # fmt: skip
