"""Counting a case: per dataset the rows as `build` counts them, persons linked across a
category's datasets (in Rust), art. 11 per category, and the art. 5 / art. 6 standards."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import _core
from .._core import Key
from ..build import MISSING, OK, REASONS, SectionStats
from ..io import open_source, read_ahead
from .case import Case, Dataset
from .statute import (
    DISCLAIMER_EN,
    DISCLAIMER_ZH,
    GAINS_SERIOUS,
    PROFIT_SERIOUS_ART6,
)


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
    src = open_source(ds.path, ds.options, read_all=True)  # every batch is read below
    cols = [(k, src.resolve(c)) for k, c in ds.fields]
    src.require([c for _, c in cols])
    out = DatasetCount(ds.path, ds.category, ds.role, ds.buyers, encoding=src.encoding)
    out.fields = [SectionStats(k, c) for k, c in cols]
    idents, tag_parts, ok_parts = [], {k: [] for k, _ in cols}, {k: [] for k, _ in cols}  # type: ignore[var-annotated]
    for batch in read_ahead(src):  # the next read while this one is tagged
        n = len(batch)
        ident = np.zeros(n, np.uint64)
        found = np.zeros(n, bool)
        any_present = np.zeros(n, bool)
        first_reason = np.zeros(n, np.uint8)
        for (kind, col), stats in zip(cols, out.fields, strict=True):
            tags, codes = _core.row_tags(key, kind, batch.text(col))
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
    out.sha256 = src.sha256()  # (of the bytes just read, for a text reader)
    out.tags = np.unique(np.concatenate(idents)) if idents else np.zeros(0, np.uint64)
    out.distinct = len(out.tags)
    for kind, _ in cols:
        t = np.concatenate(tag_parts[kind]) if tag_parts[kind] else np.zeros(0, np.uint64)
        v = np.concatenate(ok_parts[kind]) if ok_parts[kind] else np.zeros(0, bool)
        out.kind_tags[kind] = (t, v)
    return out


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
    counts once per buyer. The set algebra runs in the core (`group_distinct_counts`)."""
    pairs = list(zip(members, items, strict=True))
    buyers = sorted({b for c in members for b in c.buyers})
    obtained, per_buyer, never_sold = _core.group_distinct_counts(
        [i for c, i in pairs if c.role == "obtained"],
        [[i for c, i in pairs if b in c.buyers] for b in buyers],
    )
    sold = dict(zip(buyers, per_buyer, strict=True))
    return {
        "count": never_sold + sum(per_buyer),
        "obtained_distinct": obtained,
        "obtained_then_sold": obtained - never_sold,
        "obtained_never_sold": never_sold,
        "sold_per_buyer": sold,
        "units": obtained + sum(per_buyer),
    }


class Report(Mapping[str, Any]):
    """A counted case: reads as the JSON-ready mapping the report's JSON holds (every key of
    docs/REPORT.md), with typed access to the standards, and the per-dataset item tags the
    figures are drawn from (`tags`, never in the JSON)."""

    def __init__(self, data: dict[str, Any], tags: dict[str, npt.NDArray[np.uint64]]):
        self.data = data
        self.tags = tags

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def categories(self) -> list[dict[str, Any]]:
        return list(self.data["categories"])

    @property
    def ratio_sum(self) -> float:
        return float(self.data["ratio_sum"])

    @property
    def serious(self) -> bool:
        return bool(self.data["serious"])

    @property
    def especially_serious(self) -> bool:
        return bool(self.data["especially_serious"])

    def to_dict(self) -> dict[str, Any]:
        """The report's JSON (a copy)."""
        return dict(self.data)


def count_case(
    case: Case, key: Key | None = None, progress: Callable[[int], None] | None = None
) -> Report:
    """Count every dataset and category: the `Report`."""
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
                "fields": [s.to_dict() for s in c.fields],
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
    return Report(report, {c.path: c.tags for c in counts})


def _merge(dicts: list[dict[str, int]]) -> dict[str, int]:
    return dict(sum((Counter(d) for d in dicts), Counter()))


def method_statement(case: Case, report: Mapping[str, Any]) -> dict[str, str]:
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
