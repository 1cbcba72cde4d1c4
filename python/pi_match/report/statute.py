"""The statute's tables (法释〔2017〕10号): the art. 5 categories and tiers with the names
case files write for them, the thresholds, and the method statement the report carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _core

if TYPE_CHECKING:
    from .case import Case

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
