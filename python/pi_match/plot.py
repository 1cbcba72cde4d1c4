"""Pictures of overlaps: a pairwise heatmap and an UpSet-style bar chart of who is in exactly
which combination of cases, with value labels and 95 % interval bars where counts are
estimates. Needs matplotlib (`pip install "pi_match[plot]"`).

Chinese file names and kind names need a CJK font: the first installed of Noto Sans CJK,
Source Han Sans, WenQuanYi, SimHei, Microsoft YaHei, PingFang… is used. With none, inputs are
drawn as A, B, C… and `legend` says which is which (the command line prints it): never tofu
boxes, and no font warnings."""

from __future__ import annotations

import io
import logging
import os
import string
import warnings
from dataclasses import dataclass, field
from typing import Any

from ._core import PiMatchError
from .count import Overlaps

MAX_BARS = 20
CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans SC",
    "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Droid Sans Fallback",
    "AR PL UMing CN", "Arial Unicode MS",
)  # fmt: skip
KIND_LABELS = {"cn_ric": "身份证号", "cn_mobile": "手机号", "email": "电子邮箱",
               "bank_card": "银行卡号", "raw": "其他", "items": "信息条目"}  # fmt: skip


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PiMatchError('plots need matplotlib: pip install "pi_match[plot]"') from None
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    return plt


def cjk_font() -> str | None:
    """The name of an installed font with Chinese glyphs, or None."""
    _plt()
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in have), None)
    if found is None:
        found = _add_system_cjk_font(font_manager)
    return found


def _add_system_cjk_font(font_manager: Any) -> str | None:
    """A CJK font installed after matplotlib cached its font list: ask fontconfig for it."""
    import shutil
    import subprocess

    if shutil.which("fc-list") is None:
        return None
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True,
                             timeout=20).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    for path in sorted({ln.split(":")[0].strip() for ln in out.splitlines() if ln.strip()}):
        try:
            font_manager.fontManager.addfont(path)
        except (OSError, RuntimeError, ValueError):
            continue
    have = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in have), None)


@dataclass
class Plot:
    """A drawn figure: the PNG, every text drawn on it, and the legend for substituted names."""

    png: bytes
    texts: list[str] = field(default_factory=list)
    legend: dict[str, str] = field(default_factory=dict)


def _labels(names: list[str], font: str | None) -> tuple[list[str], dict[str, str]]:
    labels = [os.path.basename(x) for x in names]
    if font is not None or all(lb.isascii() for lb in labels):
        return labels, {}
    letters = [
        string.ascii_uppercase[i] if i < 26 else f"A{i - 25}" for i in range(len(labels))
    ]  # fmt: skip
    return letters, dict(zip(letters, labels, strict=True))


def overlap_plot(ov: Overlaps, *, font: str | None | bool = True) -> Plot:
    """Draw the overlaps; `font=True` picks an installed CJK font, `None` draws without one."""
    plt = _plt()
    chosen = cjk_font() if font is True else (font or None)
    labels, legend = _labels(list(ov.names), chosen)
    kind = f"{KIND_LABELS[ov.kind]} {ov.kind}" if chosen and ov.kind in KIND_LABELS else ov.kind
    n = len(labels)
    rc = {"font.family": [chosen, "DejaVu Sans"]} if chosen else {}
    with plt.rc_context(rc), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = plt.figure(figsize=(12.5, 6), dpi=110, layout="constrained")
        grid = fig.add_gridspec(4, 2, width_ratios=[1, 1.4], height_ratios=[3, 3, 3, 2])
        ax = fig.add_subplot(grid[:, 0])
        values = [[ov.pairwise[i][j].value for j in range(n)] for i in range(n)]
        im = ax.imshow(values, cmap="Blues")
        ax.set_xticks(range(n), labels, rotation=30, ha="right")
        ax.set_yticks(range(n), labels)
        top = max(max(r) for r in values) or 1
        for i in range(n):
            for j in range(n):
                e = ov.pairwise[i][j]
                text = (f"{e.value:,.0f}" if e.exact
                        else f"{e.value:,.0f}\n[{e.low:,.0f}–{e.high:,.0f}]")  # fmt: skip
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if e.value > top / 2 else "black")  # fmt: skip
        how = "exact" if ov.exact else "estimates, 95% CI"
        ax.set_title(f"{kind}: shared victims\n({how})", fontsize=10)
        fig.colorbar(im, ax=ax, shrink=0.6, location="bottom", pad=0.12)
        # Empty combinations say nothing: only those with someone in them are drawn.
        combos = sorted(
            ((c, e) for c, e in ov.combinations.items() if e.high > 0 or e.value > 0),
            key=lambda kv: -kv[1].value,
        )[:MAX_BARS]
        if combos:
            bars = fig.add_subplot(grid[:3, 1])
            dots = fig.add_subplot(grid[3, 1], sharex=bars)
            xs = list(range(len(combos)))
            heights = [e.value for _, e in combos]
            drawn = bars.bar(xs, heights, color="#3b6ea8")
            if not ov.exact:
                lo = [max(e.value - e.low, 0) for _, e in combos]
                hi = [max(e.high - e.value, 0) for _, e in combos]
                bars.errorbar(xs, heights, yerr=[lo, hi], fmt="none", ecolor="black", capsize=3)
            bars.bar_label(drawn, labels=[f"{h:,.0f}" for h in heights], fontsize=8, padding=2)
            bars.set_ylabel("victims in exactly these cases")
            bars.set_title(f"combinations (distinct across all: {ov.union.value:,.0f})",
                           fontsize=10)  # fmt: skip
            bars.tick_params(labelbottom=False)
            bars.margins(y=0.15)
            for x, (combo, _) in enumerate(combos):
                ys = list(range(n))
                dots.scatter(
                    [x] * n, ys, color=["black" if i in combo else "#dddddd" for i in ys], s=30
                )
                if len(combo) > 1:
                    dots.plot([x, x], [min(combo), max(combo)], color="black", lw=1.5)
            dots.set_yticks(range(n), labels, fontsize=8)
            dots.set_xticks([])
            dots.invert_yaxis()
        fig.canvas.draw()
        texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    plt.close(fig)
    return Plot(buf.getvalue(), [t for t in texts if t], legend)


def overlap_figure(ov: Overlaps) -> bytes:
    """PNG bytes: heatmap of pairwise overlaps (left) and combination bars (right)."""
    return overlap_plot(ov).png


def stack_pngs(pngs: list[bytes]) -> bytes:
    """One PNG with the given PNGs one above the other (one figure per identifier kind)."""
    if len(pngs) == 1:
        return pngs[0]
    from PIL import Image

    imgs = [Image.open(io.BytesIO(p)).convert("RGB") for p in pngs]
    out = Image.new("RGB", (max(i.width for i in imgs), sum(i.height for i in imgs)), "white")
    y = 0
    for i in imgs:
        out.paste(i, (0, y))
        y += i.height
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()
