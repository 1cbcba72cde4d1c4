"""What every command shares: printing (`--json`, `--quiet`, notes on stderr), the one-line
user error, loading keys and artefacts with a message that says what to do."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from .. import Artefact, Key
from ..outputs import text_safe

if TYPE_CHECKING:
    from ..io import ReadOptions


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit 1."""


def jsonable(obj: Any) -> Any:
    """Standard JSON: infinities and NaN (a saturated index's estimate) become null, and a
    file name that is not UTF-8 is `shown` with its bytes as `\\xNN` (`outputs.text_safe`)."""
    return text_safe(obj, finite=True)


def out(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.json:
        json.dump(
            jsonable(data), sys.stdout, ensure_ascii=False, indent=1, default=str, allow_nan=False
        )
        sys.stdout.write("\n")
    elif not args.quiet:
        print(text)


def note(args: argparse.Namespace, msg: str) -> None:
    if not args.json and not args.quiet:
        print(msg, file=sys.stderr)


def load_key(path: str) -> Key:
    if not os.path.exists(path):
        raise UserError(f"key file {path} not found; make one with: pi-match keygen -o {path}")
    return Key.load(path)


def same_key(paths: list[str], arts: list[Artefact]) -> None:
    """Artefacts to be combined must share one key; name the files when they do not."""
    for p, a in zip(paths[1:], arts[1:], strict=True):
        if a.key_id != arts[0].key_id:
            raise UserError(
                f"{p} was made with key id {a.key_id} but {paths[0]} with key id "
                f"{arts[0].key_id}: artefacts of different keys (different joint operations) "
                "cannot be combined"
            )


def read_options(args: argparse.Namespace) -> ReadOptions:
    from ..io import ReadOptions  # pyarrow: only for the commands that read inputs

    return ReadOptions(
        encoding=args.encoding,
        delimiter=args.delimiter,
        header=False if args.no_header else None,
        sheet=args.sheet,
        format=args.format,
    )


def load_artefact(path: str, key: Key | None = None) -> Artefact:
    if not os.path.exists(path):
        raise UserError(f"artefact {path} not found")
    return Artefact.open(path, key=key)


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == x and abs(x) != float("inf") else "unknown (saturated)"


def fmt_est(e: Any) -> str:
    if e.exact:
        return f"{e.value:,.0f} (exact)"
    return f"{_num(e.value)} [95% {_num(e.low)}–{_num(e.high)}]"


def one_line(msg: str) -> str:
    return " ".join(msg.split("\n"))


def write_plot(path: str, overlaps: Any, data: dict[str, Any], lines: list[str]) -> None:
    """The overlap figure of `compare` and `psi count`, and what the output says about it."""
    from ..outputs import write_bytes
    from ..plot import overlap_plot, stack_pngs

    plots = [overlap_plot(ov) for ov in overlaps]
    write_bytes(path, stack_pngs([p.png for p in plots]))
    data["plot"] = path
    lines.append(f"plot: {path}")
    legend = {k: v for p in plots for k, v in p.legend.items()}
    if legend:
        # No CJK font: the figure names inputs by letter; say which is which.
        data["plot_legend"] = legend
        lines += [f"  {k} = {v}" for k, v in legend.items()]
        lines.append("  (install fonts-noto-cjk to see the names in the figure)")


def overlap_lines(c: Any, name: Any = os.path.basename) -> list[str]:
    """The notes and per-kind union / in two or more / unique lines of a `Comparison`, inputs
    shown by `name` (file names by their base name; parties as they are)."""
    lines = list(c.notes)
    for ov in c.overlaps:
        lines.append(f"[{ov.kind}] distinct across all: {fmt_est(ov.union)}; in two or more: "
                     f"{fmt_est(ov.in_two_or_more)}")  # fmt: skip
        for n, u in zip(c.names, ov.unique, strict=True):
            lines.append(f"    only in {name(n)}: {fmt_est(u)}")
    return lines
