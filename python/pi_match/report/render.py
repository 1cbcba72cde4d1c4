"""Rendering a counted case: the tables and paragraphs, once, for Markdown and for HTML
(self-contained, with an A4 print stylesheet)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from typing import Any

from .statute import KIND_NAMES


def public(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report's JSON fields (a `Report` or the mapping it reads as)."""
    return {k: v for k, v in report.items() if not k.startswith("_")}


YES = {True: "是 / yes", False: "否 / no"}


def _standard_line(report: Mapping[str, Any]) -> str:
    def why(by: list[str]) -> str:
        names = {"count": "条数 count", "gains": "违法所得 illegal gains", "profit": "获利 profit"}
        return f" ({', '.join(names[b] for b in by)})" if by else ""

    return (
        f"Σ nᵢ/Tᵢ = {report['ratio_sum']:.3f} — 情节严重 serious: {YES[report['serious']]}"
        f"{why(report['serious_by'])}; 情节特别严重 especially serious: "
        f"{YES[report['especially_serious']]}{why(report['especially_serious_by'])}"
    )


def tables(report: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
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


def paragraphs(report: Mapping[str, Any]) -> list[str]:
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


def to_markdown(report: Mapping[str, Any]) -> str:
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


def to_html(report: Mapping[str, Any], figures: list[bytes] | None = None) -> str:
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
