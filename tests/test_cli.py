"""The `pi-match` entry point, run as a user would: a subprocess."""

from __future__ import annotations

import subprocess
import sys

from conftest import DATA


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pi_match.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_demo_runs_and_reports() -> None:
    # A fixed key makes the run reproducible, so "inside the interval" is not left to chance.
    key = str(DATA / "format_v1" / "test.key")
    r = run("demo", "--hotel", "20000", "--resold", "12000", "--shared", "3000", "--key", key)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "shared victims" in out and "inside the interval" in out
    assert "exact matches" in out and "DIFFERS" not in out
    assert "excel_scientific" in out and "missing" in out
    assert "Traceback" not in r.stderr


def test_usage_errors_exit_2() -> None:
    r = run("no-such-command")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = run("--version")
    assert r.returncode == 0 and "pi_match" in r.stdout
