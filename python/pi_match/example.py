"""The worked example shipped with the package (`pi-match report --example DIR`): a commented
case file and small synthetic data. 180,000 items of 其他 (tier 5,000) information were sold
in QQ groups for 4,000 yuan: Σ = 180,000 / 5,000 = 36, so 情节特别严重 by count, while the
gains stay below the 5,000 yuan of art. 5 (七)."""

from __future__ import annotations

import os

import numpy as np

from ._core import Key
from .outputs import check_outputs, write_text
from .synth import mobile_numbers, ric_numbers

ITEMS = 180_000

CASE_TOML = """\
# pi_match worked example: a case manifest (see docs/REPORT.md for every key).
# Run:  pi-match report case.toml        (add --pdf for a PDF, --json for machine output)

[case]
name = "示例案 2026-例-001：QQ群出售公民个人信息"
key = "example.key"          # the operation's key file (written here; keep it 0600)
insider = false              # true when obtained in the course of duties: thresholds halved
dedup = "person"             # rows sharing any identifier are one person (default)
illegal_gains = 4000         # 违法所得 in yuan: below the 5,000 of art. 5 (七)

# What the suspect obtained: a list of names, ID numbers and mobiles.
[[dataset]]
path = "seized/obtained.csv"
fields = { cn_ric = "身份证号", cn_mobile = "手机号" }
category = "其他信息"          # not on the tier 50 / 500 lists: tier 5,000
role = "obtained"

# What was sold in QQ groups: the same people, some with only a mobile number. Linked to the
# obtained rows by any shared identifier, each person counts once per buyer (art. 11).
[[dataset]]
path = "seized/sold_in_qq_groups.txt"
fields = { cn_ric = 2, cn_mobile = 3 }
delimiter = "----"
header = false
category = "其他"
role = "sold"
buyers = ["QQ群“数据交流群”"]
"""


def write_example(folder: str) -> list[str]:
    """Write the example into `folder` (made if needed); returns the files written. Refuses to
    overwrite anything that is there."""
    seized = os.path.join(folder, "seized")
    files = {
        "case": os.path.join(folder, "case.toml"),
        "key": os.path.join(folder, "example.key"),
        "obtained": os.path.join(seized, "obtained.csv"),
        "sold": os.path.join(seized, "sold_in_qq_groups.txt"),
    }
    for p in files.values():
        if os.path.lexists(p):
            raise FileExistsError(0, f"{p} exists; choose an empty folder for the example", p)
    check_outputs({}, files, folders_made=True)
    os.makedirs(seized, exist_ok=True)
    rng = np.random.default_rng(2026)
    ids = np.unique(ric_numbers(rng, ITEMS + ITEMS // 5))[:ITEMS]
    mobiles = np.unique(mobile_numbers(rng, ITEMS + ITEMS // 5))[:ITEMS]
    rng.shuffle(ids)
    names = np.char.add("客", np.arange(ITEMS).astype(str))
    write_text(files["case"], CASE_TOML)
    rows = np.char.add(np.char.add(np.char.add(names, ","), ids), np.char.add(",", mobiles))
    write_text(files["obtained"], "姓名,身份证号,手机号\n" + "\n".join(rows.tolist()) + "\n")
    # A tenth of the sold rows lost their ID number: linked through the mobile number.
    sold_ids = ids.copy()
    sold_ids[::10] = "-"
    sold = np.char.add(np.char.add(np.char.add(names, "----"), sold_ids),
                       np.char.add("----", mobiles))  # fmt: skip
    write_text(files["sold"], "\n".join(sold.tolist()) + "\n")
    Key.generate().save(files["key"])
    return list(files.values())
