"""The statutory count report (法释〔2017〕10号, arts. 5, 6 and 11): a counting aid, not a legal
conclusion.

A case manifest (TOML) lists the datasets, the information category the prosecutor assigns to
each, and whether the suspect obtained it or sold / provided it to named buyers:

```toml
[case]
name = "2026 某市 侵犯公民个人信息案"
insider = false              # obtained in the course of duties: thresholds halved
key = "op2026.key"

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

Counting: a row is one item, identified by its first valid identifier in the order `fields`
lists them. Per category, count = distinct items obtained and never sold + Σ over buyers of the
distinct items sold or provided to that buyer (art. 11: obtained-then-sold counts once; the same
data sold to different buyers counts once per buyer). The ratio sum Σ countᵢ/Tᵢ (T = 50, 500 or
5,000, halved for insiders) reaches 情节严重 at 1 and 情节特别严重 at 10 (art. 5).
"""

from __future__ import annotations

import base64
import html
import os
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._core import Key
from .io import ReadOptions, open_source
from .outputs import require_regular

TIERS: dict[int, list[str]] = {
    50: ["行踪轨迹", "通信内容", "征信", "财产"],
    500: ["住宿", "通信记录", "健康生理", "交易"],
    5000: ["其他"],
}
ENGLISH = {
    "location": "行踪轨迹", "communication_content": "通信内容",
    "credit": "征信", "property": "财产",
    "accommodation": "住宿", "communication_records": "通信记录", "health": "健康生理",
    "transaction": "交易", "other": "其他",
}  # fmt: skip
DISCLAIMER_ZH = "本报告是计数辅助工具的输出，不构成法律结论；定罪量刑由司法机关依法认定。"
DISCLAIMER_EN = (
    "This report is the output of a counting aid, not a legal conclusion; conviction and "
    "sentencing are for the judicial authorities to decide."
)


class CaseError(_core.PiMatchError):
    """A case manifest that cannot be used as written."""


def tier_of(category: str) -> int:
    """The art. 5 tier of a category name (Chinese, with or without 信息, or English)."""
    name = ENGLISH.get(category.strip().lower(), category.strip())
    base = name[:-2] if name.endswith("信息") else name
    for tier, names in TIERS.items():
        if base in names:
            return tier
    return 5000


@dataclass
class Dataset:
    path: str
    fields: list[tuple[str, str]]
    options: ReadOptions
    category: str
    tier: int
    role: str
    buyers: list[str]


@dataclass
class Case:
    name: str
    insider: bool
    key_path: str
    datasets: list[Dataset]
    source: str = ""


def load_case(path: str | os.PathLike[str]) -> Case:
    """Read and check a case manifest; errors name the dataset and the field."""
    path = os.fspath(path)
    require_regular(path, "case file")
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise CaseError(f"{path}: not valid TOML ({e})") from None
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
    datasets = []
    raw = doc.get("dataset")
    if not isinstance(raw, list) or not raw:
        raise CaseError(f"{path}: needs at least one [[dataset]] table")
    for n, d in enumerate(raw, 1):
        where = f"{path}: dataset {n}"
        if not isinstance(d.get("path"), str):
            raise CaseError(f'{where}: needs path = "..."')
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
        category, tier = d.get("category"), d.get("tier")
        if tier is not None and tier not in (50, 500, 5000):
            raise CaseError(f"{where}: tier must be 50, 500 or 5000")
        if category is None and tier is None:
            raise CaseError(f'{where}: needs category = "住宿信息" (or tier = 50|500|5000)')
        if (
            category is not None
            and tier is not None
            and tier_of(category) != tier
            and tier_of(category) != 5000
        ):
            raise CaseError(
                f"{where}: category {category!r} is tier {tier_of(category)}, not {tier}"
            )
        tier = tier if tier is not None else tier_of(category)
        category = category or {50: "第一档信息", 500: "第二档信息", 5000: "其他信息"}[tier]
        header = d.get("header")
        if header is not None and not isinstance(header, bool):
            raise CaseError(f"{where}: header must be true or false (unquoted), not {header!r}")
        for opt in ("encoding", "delimiter", "sheet", "format"):
            if d.get(opt) is not None and not isinstance(d.get(opt), str):
                raise CaseError(f'{where}: {opt} must be a string, e.g. {opt} = "..."')
        opts = ReadOptions(encoding=d.get("encoding"), delimiter=d.get("delimiter"),
                           header=header,
                           sheet=d.get("sheet"), format=d.get("format"))  # fmt: skip
        p = d["path"] if os.path.isabs(d["path"]) else os.path.join(base, d["path"])
        datasets.append(Dataset(p, [(k, str(v)) for k, v in fields.items()], opts, category,
                                tier, role, list(buyers)))  # fmt: skip
    key_path = case["key"] if os.path.isabs(case["key"]) else os.path.join(base, case["key"])
    return Case(case["name"], insider, key_path, datasets, path)


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
    tags: npt.NDArray[np.uint64] = field(default_factory=lambda: np.zeros(0, np.uint64))

    @property
    def duplicates(self) -> int:
        return self.valid - self.distinct


def count_dataset(ds: Dataset, key: Key) -> DatasetCount:
    """Read one dataset: each row's identity is its first valid identifier."""
    src = open_source(ds.path, ds.options)
    cols = [(k, src.resolve(c)) for k, c in ds.fields]
    out = DatasetCount(ds.path, ds.category, ds.role, ds.buyers, encoding=src.encoding,
                       sha256=str(src.facts.get("sha256", "")))  # fmt: skip
    chunks = []
    for batch in src.batches():
        n = len(batch)
        ident = np.zeros(n, np.uint64)
        found = np.zeros(n, bool)
        any_present = np.zeros(n, bool)
        first_reason = np.zeros(n, np.uint8)
        for kind, col in cols:
            tags, codes = _core.tag64_values(key, kind, batch.column(col))
            ok = (codes == 0) & ~found
            ident[ok] = tags[ok]
            found |= codes == 0
            present = codes > 2  # neither valid nor missing: invalid
            first_reason = np.where((first_reason == 0) & present, codes, first_reason)
            any_present |= present | (codes == 0)
        out.rows += n
        out.valid += int(found.sum())
        out.missing += int((~any_present).sum())
        bad = any_present & ~found
        out.invalid += int(bad.sum())
        for code, cnt in zip(*np.unique(first_reason[bad], return_counts=True), strict=True):
            name = _core.REASONS[int(code)]
            out.invalid_by_reason[name] = out.invalid_by_reason.get(name, 0) + int(cnt)
        chunks.append(ident[found])
    out.unreadable = len(src.rejects)
    out.tags = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, np.uint64)
    out.distinct = len(out.tags)
    return out


def _union(arrays: list[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
    return np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, np.uint64)


def count_case(case: Case, key: Key | None = None) -> dict[str, Any]:
    """Count every dataset and category; returns the report as a JSON-ready dict."""
    key = key or Key.load(case.key_path)
    counts = [count_dataset(d, key) for d in case.datasets]
    categories = []
    ratio_sum = 0.0
    for cat in dict.fromkeys(c.category for c in counts):
        members = [c for c in counts if c.category == cat]
        tier = next(d.tier for d in case.datasets if d.category == cat)
        threshold = tier / 2 if case.insider else tier
        obtained = _union([c.tags for c in members if c.role == "obtained"])
        buyers = sorted({b for c in members for b in c.buyers})
        per_buyer = {b: _union([c.tags for c in members if b in c.buyers]) for b in buyers}
        sold_any = _union(list(per_buyer.values()))
        never_sold = np.setdiff1d(obtained, sold_any, assume_unique=True)
        count = len(never_sold) + sum(len(v) for v in per_buyer.values())
        valid_units = sum(c.valid for c in members if c.role == "obtained") + sum(
            c.valid for b in buyers for c in members if b in c.buyers
        )
        units = len(obtained) + sum(len(v) for v in per_buyer.values())
        ratio = count / threshold
        ratio_sum += ratio
        categories.append({
            "category": cat,
            "tier": tier,
            "threshold": threshold,
            "datasets": [c.path for c in members],
            "rows": sum(c.rows for c in members),
            "missing": sum(c.missing for c in members),
            "invalid": sum(c.invalid for c in members),
            "invalid_by_reason": _merge([c.invalid_by_reason for c in members]),
            "unreadable": sum(c.unreadable for c in members),
            "duplicates": valid_units - units,
            "obtained_distinct": len(obtained),
            "obtained_then_sold": int(len(obtained) - len(never_sold)),
            "obtained_never_sold": len(never_sold),
            "sold_per_buyer": {b: len(v) for b, v in per_buyer.items()},
            "count": count,
            "ratio": ratio,
        })  # fmt: skip
    report: dict[str, Any] = {
        "case": case.name,
        "insider": case.insider,
        "key_id": key.id,
        "pi_match_version": _core.__version__,
        "datasets": [
            {
                "path": c.path,
                "category": c.category,
                "role": c.role,
                "buyers": c.buyers,
                "rows": c.rows,
                "missing": c.missing,
                "invalid": c.invalid,
                "invalid_by_reason": c.invalid_by_reason,
                "unreadable": c.unreadable,
                "valid": c.valid,
                "distinct": c.distinct,
                "duplicates": c.duplicates,
                "encoding": c.encoding,
                "sha256": c.sha256,
            }
            for c in counts
        ],  # fmt: skip
        "categories": categories,
        "ratio_sum": ratio_sum,
        "serious": ratio_sum >= 1,
        "especially_serious": ratio_sum >= 10,
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
    zh = (
        f"计数依据法释〔2017〕10号第五条、第六条、第十一条。识别字段：{'、'.join(kinds)}；"
        "每行记为一条信息，以字段列表中第一个有效的识别号码认定同一人；号码先按 pi_match 规范化规则"
        "（全角转半角、去除空格与连接符、身份证号校验位与出生日期校验、15位号码升为18位、手机号统一为"
        "+86格式等）处理。空值与占位符（如“-”“NULL”“\\N”“无”）计为缺失，不计入；校验不通过、"
        "位数不符、被Excel科学计数法截断的号码计为无效，不计入，分原因列示；无法解析的行单列。"
        "同一数据集内重复的号码只计一次。每一类别的条数 = 非法获取且未出售的不重复条数 + 按每一买方"
        "分别计算的出售或提供的不重复条数（获取后出售的只计一次；向不同买方出售的分别计算）。"
        f"各类别条数除以相应标准（50/500/5000条{half_zh}）后相加，合计达到1为情节严重，达到10为"
        f"情节特别严重。{DISCLAIMER_ZH}"
    )
    en = (
        "Counted under SPC/SPP Interpretation [2017] No. 10, arts. 5, 6 and 11. Identifier fields: "
        f"{', '.join(kinds)}. Each row is one item, identified by the first valid identifier in "
        "the order the fields are listed; identifiers are first canonicalised by pi_match's "
        "published rules (full-width to half-width, spaces and dashes removed, ID check "
        "character and birth date verified, 15-digit IDs upgraded, mobiles as +86...). Empty "
        "values and placeholders ('-', 'NULL', '\\N', '无') are missing and not counted; values "
        "failing validation (checksum, length, Excel scientific notation) are invalid, not "
        "counted, and listed by reason; unreadable rows are listed apart. Repeats within a "
        "counting unit count once. Per category, count = distinct items obtained and never "
        "sold + the distinct items sold or provided to each buyer, buyer by buyer (obtained "
        "then sold counts once; sold to different buyers counts once per buyer). Each "
        f"category's count is divided by its threshold (50, 500 or 5,000 items).{half_en} The "
        "sum reaching 1 meets the 'serious' standard, 10 the 'especially serious' one. "
        + DISCLAIMER_EN
    )
    return {"zh": zh, "en": en}


# ---- rendering ----------------------------------------------------------------------------


def public(report: dict[str, Any]) -> dict[str, Any]:
    """The report without internal fields (for JSON)."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


def to_markdown(report: dict[str, Any]) -> str:
    yes = {True: "是 / yes", False: "否 / no"}
    lines = [
        f"# 侵犯公民个人信息案 条数统计 / Statutory count report: {report['case']}",
        "",
        f"> {report['disclaimer']['zh']}  ",
        f"> {report['disclaimer']['en']}",
        "",
        f"pi_match {report['pi_match_version']}, key id {report['key_id']}, "
        f"insider / 履职获取: {yes[report['insider']]}",
        "",
        "## 按类别 / By category",
        "",
        "| 类别 category | 档 tier | 标准 threshold | 行 rows | 缺失 missing | 无效 invalid | "
        "重复 duplicates | 获取后出售 obtained then sold | 条数 count | 比例 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["categories"]:
        lines.append(
            f"| {c['category']} | {c['tier']} | {c['threshold']:g} | {c['rows']:,} | "
            f"{c['missing']:,} | "
            f"{c['invalid']:,} | {c['duplicates']:,} | {c['obtained_then_sold']:,} | "
            f"**{c['count']:,}** | {c['ratio']:.3f} |"
        )
    lines += [
        "",
        f"**Σ nᵢ/Tᵢ = {report['ratio_sum']:.3f}** — 情节严重 serious: {yes[report['serious']]}; "
        f"情节特别严重 especially serious: {yes[report['especially_serious']]}",
        "",
        "## 数据集 / Datasets",
        "",
        "| 文件 file | 类别 | 角色 role | 买方 buyers | 行 rows | 缺失 | 无效 (原因) invalid "
        "| 不可读 unreadable "
        "| 有效 valid | 不重复 distinct | SHA-256 |",
        "|---|---|---|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for d in report["datasets"]:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(d["invalid_by_reason"].items()))
        lines.append(
            f"| {os.path.basename(d['path'])} | {d['category']} | {d['role']} | "
            f"{', '.join(d['buyers']) or '—'} | {d['rows']:,} | {d['missing']:,} | "
            f"{d['invalid']:,}{' (' + reasons + ')' if reasons else ''} | {d['unreadable']:,} | "
            f"{d['valid']:,} | {d['distinct']:,} | `{d['sha256'][:16]}…` |"
        )
    for c in report["categories"]:
        if c["sold_per_buyer"]:
            sold = "; ".join(f"{b}: {n:,}" for b, n in c["sold_per_buyer"].items())
            never = c["obtained_never_sold"]
            lines.append(f"\n{c['category']} — 按买方 per buyer: {sold}; "
                         f"获取未出售 obtained never sold: {never:,}")  # fmt: skip
    lines += [
        "",
        "## 计数方法 / Method",
        "",
        report["method"]["zh"],
        "",
        report["method"]["en"],
        "",
    ]
    return "\n".join(lines)


def to_html(report: dict[str, Any], figures: list[bytes] | None = None) -> str:
    import re

    md = to_markdown(report)
    body: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if table:
            rows = [r for r in table if not re.fullmatch(r"\|[-:|]+\|", r)]
            cells = [[html.escape(c.strip()) for c in r.strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in cells[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        text = html.escape(line.lstrip("#> ").rstrip())
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
        if line.startswith("# "):
            body.append(f"<h1>{text}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{text}</h2>")
        elif line.startswith(">"):
            body.append(f"<p class='note'>{text}</p>")
        elif text:
            body.append(f"<p>{text}</p>")
    flush()
    for png in figures or []:
        b64 = base64.b64encode(png).decode()
        body.append(f"<figure><img alt='overlaps' src='data:image/png;base64,{b64}'></figure>")
    style = ("body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;max-width:70em;"
             "margin:2em auto;color:#111}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #999;padding:.3em .6em;text-align:right}"
             "td:first-child,th:first-child{text-align:left}.note{background:#fff4d6;padding:.6em}"
             "img{max-width:100%}@media print{body{margin:0}}")  # fmt: skip
    return ("<!doctype html><html lang='zh'><head><meta charset='utf-8'>"
            f"<title>{html.escape(report['case'])}</title><style>{style}</style></head><body>"
            + "\n".join(body) + "</body></html>")  # fmt: skip
