"""Browser helpers for the dry run of a bulk requeue: open it from an inbox button, read its
counts, confirm it now (through the page's own dialog) or schedule it."""

from __future__ import annotations

from typing import Any

from tests.support.letter_page import confirm


def open_dry_run(page: Any, button: Any) -> None:
    """Press an inbox bulk button; wait for the dry-run page it leads to."""
    with page.expect_navigation():
        button.click()
    page.wait_for_url("**/deadletters/preview/*/")


def dry_run_total(page: Any) -> int:
    return int(page.inner_text('#preview-summary [data-count="total"]').replace(",", ""))


def dry_run_targets(page: Any) -> dict[str, int]:
    """Letters per target, as the dry run's table shows them."""
    rows = page.locator("#preview-targets tbody tr")
    found: dict[str, int] = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        letters = row.locator('[data-col="letters"]').inner_text().replace(",", "")
        found[str(row.get_attribute("data-target"))] = int(letters)
    return found


def requeue_now(page: Any, rate: float | None = None) -> str:
    """Confirm "Requeue now" (with a rate limit); the question the dialog asked."""
    form = page.locator("#requeue-now")
    if rate is not None:
        form.locator("input[name=rate_limit]").fill(str(rate))
    question = str(form.get_attribute("data-confirm") or "")
    confirm(page, form.locator("button[type=submit]"))
    return question
