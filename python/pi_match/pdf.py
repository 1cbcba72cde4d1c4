"""HTML to PDF through headless Chromium (Debian: `apt-get install chromium fonts-noto-cjk`),
the renderer the report's print stylesheet is tested with."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ._core import PiMatchError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
INSTALL = (
    "writing a PDF needs Chromium and a CJK font: on Debian or Ubuntu run "
    "`apt-get install chromium fonts-noto-cjk` (or install Google Chrome), then try again"
)


def find_browser() -> str | None:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return None


def html_to_pdf(page: str, pdf_path: str, *, timeout: float = 120) -> None:
    """Print the HTML text `page` to `pdf_path` (A4, the page's own print stylesheet)."""
    browser = find_browser()
    if browser is None:
        raise PiMatchError(INSTALL)
    with tempfile.TemporaryDirectory(prefix="pi_match_chromium_") as profile:
        # Chromium decides HTML by the name's ending: the page goes in a file named .html.
        html_path = os.path.join(profile, "report.html")
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(page)
        cmd = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
            "--no-first-run", f"--user-data-dir={profile}", "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_path}", "file://" + os.path.abspath(html_path),
        ]  # fmt: skip
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PiMatchError(
                f"Chromium did not finish printing {pdf_path} in {timeout:.0f} s"
            ) from None
    if r.returncode != 0 or not os.path.exists(pdf_path) or os.path.getsize(pdf_path) == 0:
        last = (r.stderr.strip().splitlines() or ["no message"])[-1][:300]
        raise PiMatchError(f"Chromium could not print {pdf_path}: {last}")
