"""The `pi-match` command line. Every command takes `--json` for machine output and `--quiet`.
User mistakes (a missing file, a wrong key, an unknown column, an undecodable file) print one
line on stderr saying what, where and what to do, and exit 1; usage errors exit 2.

One module per command, imported only when that command runs: it calls the library and
prints (`_common` holds the shared printing and the one-line error). Importing `pi_match`
never imports this package, and `pi-match --help` loads neither numpy nor pyarrow."""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
import threading
import warnings
from collections.abc import Sequence

from .. import PiMatchError, __version__
from ._common import UserError, one_line

REPORT_HELP = """\
Count the items of a case under 法释〔2017〕10号 (arts. 5, 6, 11) and write PREFIX.md,
PREFIX.html and PREFIX.json (and PREFIX.pdf with --pdf). A counting aid, not a legal
conclusion. The case manifest is TOML (every key: docs/REPORT.md; a commented one:
pi-match report --example DIR):

  [case]
  name = "..."                 case name (shown in the report)
  key = "op.key"               the operation's key file
  insider = false              obtained in the course of duties: thresholds halved
  dedup = "person"             "person": rows sharing any identifier are one item;
                               "identifier": a row is its first valid identifier
  illegal_gains = 4000         违法所得 in yuan (optional; art. 5 (七))
  purpose = "legitimate_business"   art. 6 (optional); profit = 60000 (optional)

  [[dataset]]                  one per file
  path = "seized/a.csv"
  fields = { cn_ric = "身份证号", cn_mobile = 3 }   kind = column name or number
  category = "住宿信息"          an art. 5 category (or give tier = 50 | 500 | 5000)
  role = "obtained"            or "sold", with buyers = ["张某", "李某"]
  delimiter, header, encoding, sheet, format   read options, as for build
"""


def rate(text: str) -> float:
    """A false-positive rate: a number strictly between 0 and 1."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < x < 1:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1, e.g. 1e-6")
    return x


def count(text: str) -> int:
    """A positive whole number of items; `1e6` and `1_000_000` are accepted."""
    try:
        x = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (x == x and 1 <= x < 2**62) or x != int(x):
        raise argparse.ArgumentTypeError(f"{text} must be a whole number of at least 1")
    return int(x)


def positive(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (x > 0 and x != float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return x


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or notes")
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument("--field", action="append", default=[], metavar="KIND=COLUMN",
                         help="identifier kind and its column (header name or 1-based number); "
                         "repeat for several kinds; detected when omitted")  # fmt: skip
    reading.add_argument("--encoding", help="the input's encoding (default: BOM, UTF-8, GB18030)")
    reading.add_argument(
        "--delimiter", help="field separator, e.g. ',' '\\t' '|' '----' (default: sniffed)"
    )
    reading.add_argument("--no-header", action="store_true", help="the first line is data")
    reading.add_argument(
        "--sheet", help="Excel sheet (or SQL table) to read (default: all sheets / the first table)"
    )
    reading.add_argument("--format", choices=["csv", "lines", "jsonl", "parquet", "xlsx", "sql"],
                         help="input format (default: from the file name)")  # fmt: skip
    reading.add_argument("--output-encoding", default="utf-8-sig",
                         choices=["utf-8-sig", "utf-8", "gb18030"],
                         help="encoding of CSV outputs (rejects, hits); default UTF-8 with a "
                         "byte-order mark, which Excel on Chinese Windows opens right")  # fmt: skip

    p = argparse.ArgumentParser(
        prog="pi-match",
        description="Privacy-preserving breach matching: count shared victims across cases "
        "without exchanging raw personal data.",
    )
    p.add_argument("--version", action="version", version=f"pi_match {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    k = sub.add_parser("keygen", parents=[common], help="make a new key for a joint operation")
    k.add_argument("-o", "--output", required=True, help="key file to write (mode 0600)")
    k.add_argument("--force", action="store_true", help="replace an existing key file")
    k.set_defaults(command_module="keygen")

    b = sub.add_parser(
        "build", parents=[common, reading], help="build an artefact from input files"
    )
    b.add_argument("inputs", nargs="+", metavar="INPUT")
    b.add_argument("--key", required=True, help="key file")
    b.add_argument("-o", "--output", required=True, help="artefact to write (.pmi)")
    b.add_argument(
        "--fpr", type=rate, default=1e-6, help="Bloom false-positive rate (default 1e-6)"
    )
    b.add_argument(
        "--capacity", type=count, help="distinct values to size for (default: the row count)"
    )
    b.add_argument("--exact", action="store_true", help="also store exact tag sets")
    b.add_argument(
        "--prf",
        default="hmac-sha256",
        choices=["hmac-sha256", "hmac-sm3"],
        help="the keyed PRF: HMAC-SHA256 (default) or HMAC-SM3 (国密, GB/T 32905); partners "
        "must use the same one",
    )
    b.add_argument(
        "--canon-version",
        type=int,
        metavar="N",
        help="identifier rules of generation N (1: pi_match 0.1) to match a partner's older "
        "artefacts (default: the newest)",
    )
    b.add_argument("--rejects", help="rejects CSV (default: OUTPUT.rejects.csv)")
    b.add_argument(
        "--authenticate",
        action="store_true",
        help="add a MAC so key holders can check the artefact (pi-match verify)",
    )
    b.add_argument(
        "--plain-tag-sets",
        action="store_true",
        help="with --exact: store tag sets 8 bytes a tag, not compressed, for a partner whose "
        "pi_match cannot read compressed tag sets (it says: unknown section type 6)",
    )
    where = b.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=count,
        metavar="N",
        help="read and tag on a local Dask cluster of N worker processes (pi_match[dask]); "
        "the same outputs as without",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="read and tag on the Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786); the "
        "inputs and the key file must be at the same paths on every worker",
    )
    b.set_defaults(command_module="build")

    i = sub.add_parser(
        "inspect", parents=[common], help="header facts of an artefact (no key needed)"
    )
    i.add_argument("artefact")
    i.set_defaults(command_module="inspect")

    c = sub.add_parser(
        "compare", parents=[common], help="overlaps, union, shared and unique victims (no key)"
    )
    c.add_argument("artefacts", nargs="+", metavar="ARTEFACT")
    c.add_argument("--plot", metavar="PNG", help="write an overlap heatmap and combination bars")
    c.set_defaults(command_module="compare")

    pl = sub.add_parser("plan", parents=[common], help="size indices for an exchange")
    pl.add_argument(
        "--sizes", nargs="+", required=True, type=count, metavar="N", help="expected list sizes"
    )
    pl.add_argument(
        "--min-overlap",
        type=count,
        help="the smallest overlap that matters (needed with two or more sizes)",
    )
    pl.add_argument(
        "--precision",
        type=positive,
        default=0.5,
        help="95%% interval half-width relative to that overlap (default 0.5)",
    )
    pl.add_argument("--fpr", type=rate, help="also probe at this false-positive rate")
    pl.set_defaults(command_module="plan")

    rp = sub.add_parser(
        "report",
        parents=[common],
        help="statutory count report from a case",
        description=REPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument("case", metavar="CASE.toml", nargs="?", help="the case manifest")
    rp.add_argument("-o", "--output", help="path prefix for .md/.html/.json (default: CASE_report)")
    rp.add_argument("--no-plot", action="store_true", help="no figure in the HTML report")
    rp.add_argument("--pdf", action="store_true", help="also write PREFIX.pdf (needs Chromium)")
    rp.add_argument(
        "--example", metavar="DIR", help="write a commented case.toml and synthetic data to DIR"
    )
    rp.set_defaults(command_module="report")

    pr = sub.add_parser(
        "probe", parents=[common, reading], help="which of my rows are in their artefact"
    )
    pr.add_argument("input", metavar="INPUT")
    pr.add_argument("--index", required=True, help="their artefact")
    pr.add_argument("--key", required=True, help="key file")
    pr.add_argument("-o", "--output", help="CSV of the matching rows (line number and row)")
    pr.add_argument(
        "--rejects", help="CSV of rows that could not be probed (default: OUTPUT.rejects.csv)"
    )
    pr.set_defaults(command_module="probe")

    v = sub.add_parser("verify", parents=[common], help="check an artefact's MAC with the key")
    v.add_argument("artefact")
    v.add_argument("--key", required=True, help="key file")
    v.set_defaults(command_module="verify")

    m = sub.add_parser("merge", parents=[common], help="union artefacts made with one key")
    m.add_argument("artefacts", nargs="+", metavar="ARTEFACT")
    m.add_argument("-o", "--output", required=True)
    m.add_argument(
        "--plain-tag-sets",
        action="store_true",
        help="store the merged tag sets 8 bytes a tag, not compressed, for a partner whose "
        "pi_match cannot read compressed tag sets (it says: unknown section type 6)",
    )
    m.set_defaults(command_module="merge")

    ps = sub.add_parser(
        "psi",
        help="keyless mode: exact shared counts among agencies that share no key",
        description="Keyless mode (ECDH-PSI on ristretto255, exchanged as files). Each party "
        "runs `psi init` on its lists, sends its message to the next party, who runs `psi "
        "blind`, until every party has blinded every set; then anyone runs `psi count` on the "
        "fully blinded messages. See docs/PSI.md.",
    )
    pss = ps.add_subparsers(dest="psi_command", required=True, metavar="STEP")
    pi = pss.add_parser(
        "init", parents=[common, reading], help="this party's secret and first message"
    )
    pi.add_argument("inputs", nargs="+", metavar="INPUT")
    pi.add_argument("--operation", required=True, metavar="ID", help="the operation id")
    pi.add_argument("--party", required=True, metavar="NAME", help="this party's name")
    pi.add_argument(
        "--parties", required=True, metavar="A,B,C", help="every party, in the agreed order"
    )
    pi.add_argument(
        "--secret", required=True, metavar="S", help="secret file to create (mode 0600)"
    )
    pi.add_argument("-o", "--output", required=True, metavar="M", help="message to write")
    pi.add_argument("--rejects", help="rejects CSV (default: M.rejects.csv)")
    pi.add_argument(
        "--canon-version", type=int, metavar="N", help="identifier rules of generation N"
    )
    pb = pss.add_parser("blind", parents=[common], help="apply this party's secret to a message")
    pb.add_argument("message", metavar="M")
    pb.add_argument("--secret", required=True, metavar="S", help="this party's secret file")
    pb.add_argument("-o", "--output", required=True, metavar="OUT", help="message to write")
    pb.add_argument(
        "--max-items",
        type=count,
        metavar="N",
        help="refuse a set of more than N items (the operation's agreed cap)",
    )
    pc = pss.add_parser("count", parents=[common], help="count fully blinded messages")
    pc.add_argument("messages", nargs="+", metavar="M")
    pc.add_argument("--plot", metavar="PNG", help="write an overlap heatmap and combination bars")
    ps.set_defaults(command_module="psi")

    d = sub.add_parser(
        "demo", parents=[common], help="index two synthetic breach lists and compare them"
    )
    d.add_argument("--hotel", type=int, default=200_000, help="rows in the first list")
    d.add_argument("--resold", type=int, default=120_000, help="rows in the second list")
    d.add_argument("--shared", type=int, default=30_000, help="people in both lists")
    d.add_argument("--key", help="use this key file instead of a fresh key (reproducible run)")
    d.set_defaults(command_module="demo")
    return p


def _fix_dash_values(argv: list[str]) -> list[str]:
    """`--delimiter ----` would read as an option; glue such values to their flag."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a in ("--delimiter",):
            nxt = next(it, None)
            out.append(a if nxt is None else f"{a}={nxt}")
        else:
            out.append(a)
    return out


def console() -> None:
    """The `pi-match` command (and `python -m pi_match.cli`): `main`, then out of the process
    without tearing the interpreter down. By then every file the command wrote is closed,
    synced and renamed into place; what is left is freeing memory the kernel frees anyway and
    unloading numpy and pyarrow module by module — about 40 ms of a 5 M-row build's 1.1 s
    (`python -X importtime`'s mirror image, measured with farm-bench). Standard output and
    error are flushed first. Should a thread other than the daemons (the prescan, the
    readers) still be running, or a child process (a Dask worker, say) not yet reaped, the
    normal exit runs instead and waits for them, as Python's would. `main` itself returns
    normally, for callers that run it inside their own process. Its messages never fail on a
    file name that is not UTF-8 (a GBK name from a seized disk): what the terminal cannot take
    is printed as a backslash escape."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    rc = main()
    mp = sys.modules.get("multiprocessing")  # (not imported by a command that has no children)
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ) or (mp is not None and mp.active_children()):
        sys.exit(rc)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # (a reader gone, or a stream closed: nothing to lose)
        pass
    os._exit(rc)


def main(argv: Sequence[str] | None = None) -> int:
    argv = _fix_dash_values(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    if getattr(args, "delimiter", None) == "\\t":
        args.delimiter = "\t"
    # numpy's OpenBLAS would start a thread per core that spins between the few calls made
    # here, taking a core from the Rust work; nothing here multiplies matrices.
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .. import _core

    _core._tune_malloc_for_streaming()  # this process is ours (see its text)
    if (
        args.command in ("build", "probe")
        and args.encoding is None
        and getattr(args, "scheduler", None) is None
    ):
        # The inputs' scan pass, on the other core while numpy and pyarrow load (`_prescan`):
        # as a file left to detection is scanned, here, not on a cluster's workers.
        from .. import _prescan

        _prescan.start(args.inputs if args.command == "build" else [args.input])
    with warnings.catch_warnings():
        # A warning (a key file others can read, say) is one line as errors are, not Python's
        # `file:line: Category` with a line of our source under it.
        warnings.showwarning = _show_warning
        # openpyxl warns of workbook parts it drops (styles, data validation, extensions):
        # nothing about the cells read, and not the user's to act on.
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        return _run(args)


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    print(f"pi-match: warning: {one_line(str(message))}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "compare" and len(args.artefacts) < 2:
            raise UserError("compare needs at least two artefacts")
        module = importlib.import_module(f".{args.command_module}", __name__)
        return int(module.run(args))
    except (UserError, PiMatchError) as e:
        print(f"pi-match: error: {one_line(str(e))}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more.
        sys.stderr.close()
        return 0
    except FileNotFoundError as e:
        print(f"pi-match: error: {e.filename or e}: no such file", file=sys.stderr)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename and str(e.filename) not in str(e.strerror) else ""
        print(f"pi-match: error: {one_line(where + (e.strerror or str(e)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pi-match: interrupted", file=sys.stderr)
        return 130
