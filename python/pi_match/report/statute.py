"""The statute's tables (法释〔2017〕10号): the art. 5 categories and tiers with the names
case files write for them, the thresholds, and the method statement the report carries."""

from __future__ import annotations

from .. import _core

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
