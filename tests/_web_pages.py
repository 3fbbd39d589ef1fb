"""Opening a page of a served site in the test browser, with its errors collected."""

from __future__ import annotations


def open_page(chromium, address: str, width: int = 360, **options):
    """A new page at ``address``, once the page says it is ready; ``page.errors`` collects
    uncaught exceptions and console errors. ``options`` go to ``new_page``."""
    page = chromium.new_page(viewport={"width": width, "height": 780}, **options)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(address)
    page.wait_for_selector("body[data-ready='1']", timeout=90_000)
    page.errors = errors
    return page
