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
