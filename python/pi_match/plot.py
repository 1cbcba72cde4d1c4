"""Pictures of overlaps: a pairwise heatmap and an UpSet-style bar chart of who is in exactly
which combination of cases, with 95 % interval bars where counts are estimates. Needs
matplotlib (`pip install "pi_match[plot]"`)."""

from __future__ import annotations

import io
import os
from typing import Any

from ._core import PiMatchError
from .count import Overlaps

MAX_BARS = 20


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PiMatchError('plots need matplotlib: pip install "pi_match[plot]"') from None
    return plt


def overlap_figure(ov: Overlaps) -> bytes:
    """PNG bytes: heatmap of pairwise overlaps (left) and combination bars (right)."""
    import warnings

    plt = _plt()
    n = len(ov.names)
    labels = [os.path.basename(x) for x in ov.names]
    fig = plt.figure(figsize=(12, 5.5), dpi=110)
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
            text = f"{e.value:,.0f}" if e.exact else f"{e.value:,.0f}\n[{e.low:,.0f}–{e.high:,.0f}]"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if e.value > top / 2 else "black")  # fmt: skip
    ax.set_title(f"{ov.kind}: shared victims ({'exact' if ov.exact else 'estimates, 95% CI'})")
    fig.colorbar(im, ax=ax, shrink=0.7)
    combos = sorted(ov.combinations.items(), key=lambda kv: -kv[1].value)[:MAX_BARS]
    if combos:
        bars = fig.add_subplot(grid[:3, 1])
        dots = fig.add_subplot(grid[3, 1], sharex=bars)
        xs = range(len(combos))
        heights = [e.value for _, e in combos]
        bars.bar(xs, heights, color="#3b6ea8")
        if not ov.exact:
            lo = [max(e.value - e.low, 0) for _, e in combos]
            hi = [max(e.high - e.value, 0) for _, e in combos]
            bars.errorbar(xs, heights, yerr=[lo, hi], fmt="none", ecolor="black", capsize=3)
        bars.set_ylabel("victims in exactly these cases")
        bars.set_title(f"combinations (union {ov.union.value:,.0f})")
        bars.tick_params(labelbottom=False)
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
    fig.tight_layout()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing CJK glyphs in the default font
        fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


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
