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

from .case import Case, Dataset, load_case
from .counting import (
    DatasetCount,
    Report,
    art11_count,
    count_case,
    count_dataset,
    method_statement,
    person_items,
)
from .render import public, tables, to_html, to_markdown
from .statute import (
    CATEGORIES,
    DISCLAIMER_EN,
    DISCLAIMER_ZH,
    VARIANTS,
    CaseError,
    category_of,
    known_categories,
    tier_of,
)

__all__ = [
    "CATEGORIES",
    "DISCLAIMER_EN",
    "DISCLAIMER_ZH",
    "VARIANTS",
    "Case",
    "CaseError",
    "Dataset",
    "Report",
    "DatasetCount",
    "art11_count",
    "category_of",
    "count_case",
    "count_dataset",
    "known_categories",
    "load_case",
    "method_statement",
    "person_items",
    "public",
    "tables",
    "tier_of",
    "to_html",
    "to_markdown",
]
