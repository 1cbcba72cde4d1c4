"""The statutory count report on a small fixed case whose answer is worked out by hand below."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from pi_match.report import CaseError, count_case, load_case, tier_of, to_html, to_markdown

I1, I2, I3, I4 = ("11010519491231002X", "440305199003071236", "810000198001010014",
                  "830000197006060036")  # fmt: skip
MOBILES = [f"1380000{i:04d}" for i in range(25)]


def write_case(tmp: pathlib.Path, insider: bool) -> pathlib.Path:
    (tmp / "a.csv").write_text(  # obtained, 住宿信息
        f"姓名,身份证号\n甲,{I1}\n乙,{I2}\n丙,{I3}\n丙,{I3.lower()}\n丁,-\n戊,1.10105E+17\n",
        "utf-8",
    )
    (tmp / "b.txt").write_text(f"x----{I2}\ny----{I4}\n", "utf-8")  # sold to 张某
    (tmp / "c.csv").write_text(f"id\n{I1}\n", "utf-8")  # sold to 张某 and 李某
    (tmp / "d.csv").write_text("手机\n" + "\n".join(MOBILES) + "\n", "utf-8")  # 行踪轨迹
    subprocess.run([sys.executable, "-m", "pi_match.cli", "keygen", "-o", str(tmp / "k.key")],
                   check=True, capture_output=True)  # fmt: skip
    case = tmp / "case.toml"
    case.write_text(
        f"""
[case]
name = "测试案"
insider = {"true" if insider else "false"}
key = "k.key"

[[dataset]]
path = "a.csv"
fields = {{ cn_ric = "身份证号" }}
category = "住宿信息"
role = "obtained"

[[dataset]]
path = "b.txt"
fields = {{ cn_ric = 2 }}
delimiter = "----"
header = false
category = "住宿信息"
role = "sold"
buyers = ["张某"]

[[dataset]]
path = "c.csv"
fields = {{ cn_ric = "id" }}
tier = 500
role = "sold"
buyers = ["张某", "李某"]

[[dataset]]
path = "d.csv"
fields = {{ cn_mobile = "手机" }}
category = "行踪轨迹信息"
""",
        "utf-8",
    )
    return case


def test_hand_worked_case(tmp_path: pathlib.Path) -> None:
    # 住宿信息 (tier 500). Obtained O = {I1, I2, I3} (I3 twice: one duplicate; "-" missing;
    # 1.10105E+17 invalid). Sold to 张某: {I2, I4} ∪ {I1} = 3; to 李某: {I1} = 1.
    # Never sold: O − {I1, I2, I4} = {I3} = 1. Count = 1 + 3 + 1 = 5.
    # Rows 6 + 2 + 1 = 9; duplicates: valid units (4 + 3 + 1) − units (3 + 3 + 1) = 1.
    # c.csv says tier = 500 with no category, so it joins a category of its own.
    # 行踪轨迹 (tier 50): 25 distinct mobiles. Ratio 25/50 + 5/500 + 1/500 = 0.512.
    report = count_case(load_case(write_case(tmp_path, insider=False)))
    cats = {c["category"]: c for c in report["categories"]}
    hotel = cats["住宿信息"]
    assert (hotel["rows"], hotel["missing"], hotel["invalid"], hotel["duplicates"]) == (8, 1, 1, 1)
    assert hotel["count"] == 4 and hotel["obtained_then_sold"] == 1
    assert hotel["sold_per_buyer"] == {"张某": 2}
    other = cats["第二档信息"]
    assert other["count"] == 2 and other["sold_per_buyer"] == {"张某": 1, "李某": 1}
    assert cats["行踪轨迹信息"]["count"] == 25 and cats["行踪轨迹信息"]["tier"] == 50
    assert report["ratio_sum"] == pytest.approx(25 / 50 + 4 / 500 + 2 / 500)
    assert not report["serious"] and not report["especially_serious"]
    for key in ("categories", "ratio_sum", "serious", "especially_serious", "method"):
        assert key in report
    for c in report["categories"]:
        assert {"category", "tier", "rows", "missing", "invalid", "duplicates", "count"} <= set(c)
    assert (
        "不构成法律结论" in report["method"]["zh"]
        and "not a legal conclusion" in report["method"]["en"]
    )
    md = to_markdown(report)
    assert "0.512" in md and "张某" in md
    assert "<table>" in to_html(report)


def test_insider_halves_thresholds(tmp_path: pathlib.Path) -> None:
    report = count_case(load_case(write_case(tmp_path, insider=True)))
    # 25/25 + 4/250 + 2/250 = 1.024: serious, not especially serious.
    assert report["ratio_sum"] == pytest.approx(1.024)
    assert report["serious"] and not report["especially_serious"]
    assert "标准减半" in report["method"]["zh"]


def test_the_same_data_under_one_category_counts_per_buyer(tmp_path: pathlib.Path) -> None:
    case = write_case(tmp_path, insider=False)
    text = case.read_text("utf-8").replace("tier = 500", 'category = "住宿信息"')
    case.write_text(text, "utf-8")
    report = count_case(load_case(case))
    hotel = next(c for c in report["categories"] if c["category"] == "住宿信息")
    # O = {I1, I2, I3}; 张某 {I1, I2, I4}; 李某 {I1}; never sold {I3}: 1 + 3 + 1 = 5.
    assert hotel["count"] == 5 and hotel["sold_per_buyer"] == {"张某": 3, "李某": 1}
    assert hotel["obtained_then_sold"] == 2 and hotel["duplicates"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[case]\nname='x'\nkey='k'\n", "at least one"),
        (
            "[case]\nname='x'\nkey='k'\n[[dataset]]\npath='a'\nfields={passport='1'}\ncategory='其他'\n",
            "unknown kind",
        ),
        (
            "[case]\nname='x'\nkey='k'\n[[dataset]]\npath='a'\nfields={raw='1'}\ncategory='其他'\nrole='sold'\n",
            "buyers",
        ),
        (
            "[case]\nname='x'\nkey='k'\n[[dataset]]\npath='a'\nfields={raw='1'}\ntier=7\n",
            "tier must be",
        ),
        (
            "[case]\nname='x'\nkey='k'\n[[dataset]]\npath='a'\nfields={raw='1'}\ncategory='住宿信息'\ntier=50\n",
            "is tier 500",
        ),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_manifests_say_where(tmp_path: pathlib.Path, text: str, message: str) -> None:
    p = tmp_path / "case.toml"
    p.write_text(text, "utf-8")
    with pytest.raises(CaseError, match=message):
        load_case(p)


def test_tiers() -> None:
    assert tier_of("住宿信息") == tier_of("住宿") == tier_of("accommodation") == 500
    assert tier_of("行踪轨迹信息") == tier_of("征信") == tier_of("财产信息") == 50
    assert tier_of("其他") == tier_of("其他信息") == tier_of("other") == 5000
    # Not on the table: no guess (art. 5 (四)'s list is open).
    assert tier_of("姓名住址") is None and tier_of("酒店住宿信息") == 500


def test_report_command_writes_all_three(tmp_path: pathlib.Path) -> None:
    case = write_case(tmp_path, insider=True)
    r = subprocess.run([sys.executable, "-m", "pi_match.cli", "report", str(case), "--json"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["serious"] is True and "_tags" not in data
    prefix = tmp_path / "case_report"
    saved = json.loads(pathlib.Path(f"{prefix}.json").read_text("utf-8"))
    assert saved["ratio_sum"] == pytest.approx(1.024)
    html_text = pathlib.Path(f"{prefix}.html").read_text("utf-8")
    assert "data:image/png;base64," in html_text and "情节严重" in html_text
    assert "Σ" in pathlib.Path(f"{prefix}.md").read_text("utf-8")
