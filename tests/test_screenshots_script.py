"""scripts/screenshots.py without a browser: one page that cannot be shot does not stop the rest."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "screenshots.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakePage:
    name: str


class ShotFailed(Exception):
    """Stands for Playwright's Error (a selector that never appears, a button that is missing)."""


def test_a_page_that_fails_is_reported_and_the_others_are_still_shot(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = load_script()

    def shoot_one(page: FakePage) -> list[Path]:
        if page.name == "tail":
            raise ShotFailed("Timeout 30000ms exceeded.\nwaiting for locator('.mqb-tail')")
        return [Path(f"{page.name}-1440-light.png")]

    pages = [FakePage("overview"), FakePage("tail"), FakePage("jobs")]
    saved, failed = script.shoot_each(pages, shoot_one, ShotFailed)

    assert saved == [Path("overview-1440-light.png"), Path("jobs-1440-light.png")]
    assert failed == 1
    assert capsys.readouterr().out == "# tail: failed: Timeout 30000ms exceeded.\n"


def test_an_error_that_is_not_a_browser_error_is_not_swallowed() -> None:
    script = load_script()

    def shoot_one(page: FakePage) -> list[Path]:
        raise KeyError(page.name)

    with pytest.raises(KeyError):
        script.shoot_each([FakePage("overview")], shoot_one, ShotFailed)


class RecordingPage:
    """Records what the script asks of a Playwright page."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def emulate_media(self, color_scheme: str) -> None:
        self.calls.append(f"theme {color_scheme}")

    def set_viewport_size(self, size: dict[str, int]) -> None:
        self.calls.append(f"width {size['width']}")

    def goto(self, url: str) -> None:
        self.calls.append("goto")

    def wait_for_selector(self, selector: str, timeout: int) -> None:
        self.calls.append("wait")

    def click(self, selector: str) -> None:
        self.calls.append("click")

    def evaluate(self, script: str) -> None:
        self.calls.append(f"evaluate {script}")

    def screenshot(self, path: str, full_page: bool) -> None:
        self.calls.append("screenshot")


def test_a_page_opened_by_a_button_is_shot_from_the_top(tmp_path: Path) -> None:
    script = load_script()
    from tests.support.pages import Page

    page = RecordingPage()
    saved = script.shoot(page, "http://x", Page("tail", "/q/", press="button"), tmp_path)

    assert len(saved) == 4
    for i, call in enumerate(page.calls):
        if call == "screenshot":
            assert page.calls[i - 2 : i] == ["click", "evaluate window.scrollTo(0, 0)"]
