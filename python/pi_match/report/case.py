"""The case manifest (TOML): its datasets, their categories, roles and read options, checked
with errors that name the file, the dataset and the key."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from typing import Any

from .. import _core
from ..io import ReadOptions
from ..outputs import require_regular
from .statute import CATEGORIES, TIER_NAMES, CaseError, category_of, known_categories


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
