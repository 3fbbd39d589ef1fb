"""Serve a site on 127.0.0.1 and open it in a headless, system-installed Chromium.

Used by the browser tests and ``benchmarks/web.py``. Playwright drives the browser found on
this machine (Debian's ``chromium``, or ``$EDGEAE_CHROMIUM``) through an explicit
``executable_path``: it never downloads a browser of its own.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_ARGS", "chromium_path", "missing", "serve", "browser", "check_site"]

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """``$EDGEAE_CHROMIUM``, else the first Chromium on PATH, else None."""
    env = os.environ.get("EDGEAE_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    return next((p for n in _CHROMIUM_NAMES if (p := shutil.which(n))), None)


def missing() -> str | None:
    """Why the headless browser cannot run here (None when it can)."""
    if chromium_path() is None:
        return "no Chromium found (apt-get install chromium, or set EDGEAE_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python package playwright not installed (pip install playwright; no browser download needed)"
    return None


# Flags for a quiet, reproducible headless run: --no-sandbox because Chromium refuses its
# sandbox as root (CI containers); the rest keep it from reaching out or using a GPU.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test and benchmark output clean
        pass


class _Isolated(_Quiet):
    def end_headers(self) -> None:
        # Cross-origin isolation: browsers then give performance.now() microsecond resolution
        # (100 us without it), which per-call timings of a sub-millisecond encoder need.
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


@contextmanager
def serve(folder: str | Path, isolated: bool = True) -> Iterator[str]:
    """Serve ``folder`` on a free port of 127.0.0.1 in a thread; yields its base URL.

    ``isolated=False`` serves it as ``python -m http.server`` does (coarse browser timers).
    """
    handler = functools.partial(_Isolated if isolated else _Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright ``Browser``) started from the system's executable."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError(missing())
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_ARGS))
        try:
            yield b
        finally:
            b.close()


def check_site(folder: str | Path, timeout_s: float = 120.0) -> dict[str, Any]:
    """Open a written site in headless Chromium and run its self-check for every precision.

    Returns ``{"chromium": version, "precisions": {p: selfCheck result}}`` (see runner.mjs:
    ``max_code_diff``, ``code_tol``, ``eae_equal``, ``eae_total``, ``ok``, ...). Raises
    :class:`~edgeae.errors.ValidationError` with the page's own message as soon as the page
    shows an error (a graph that fails its hash, onnxruntime-web out of reach, ...).
    """
    import json

    from edgeae.errors import ValidationError

    site = json.loads((Path(folder) / "site.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {"precisions": {}}
    with serve(folder) as url, browser() as b:
        out["chromium"] = b.version
        page = b.new_page()
        page.goto(url)
        try:
            page.wait_for_selector("body[data-ready='1'], body[data-error]", state="attached",
                                   timeout=timeout_s * 1000)
        except Exception:  # neither ready nor failed: say what it showed
            status = page.inner_text("#status") if page.query_selector("#status") else ""
            raise ValidationError(f"the page in Chromium did not start in {timeout_s:.0f} s; it shows: "
                                  f"{status or 'nothing'}") from None
        if page.get_attribute("body", "data-error") is not None:
            raise ValidationError(f"the page in Chromium {b.version} failed: {page.inner_text('#status').removeprefix('Error: ')}")
        for precision in site["precisions"]:
            out["precisions"][precision] = page.evaluate("(p) => edgeae.selfCheck(p)", precision)
        page.close()
    return out
