"""scripts/screenshots.py without a browser: one page that cannot be shot does not stop the rest."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

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

    def wait_for_load_state(self, state: str, timeout: int) -> None:
        self.calls.append(f"settle {state}")

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


# A shared broker: leftovers of older runs sort before the demo's own, busy entities.
BROKER: dict[str, object] = {
    "/api/clusters/health": {
        "clusters": [{"slug": "r", "kind": "rabbitmq"}, {"slug": "k", "kind": "kafka"}]
    },
    "/api/clusters/r/rabbitmq/queues": {
        "items": [
            {
                "vhost": "/",
                "name": "celery-tasks",
                "messages": 0,
                "consumers": 0,
                "dead_letter_exchange": "dlx",
            },
            {
                "vhost": "/",
                "name": "demo-dlq",
                "messages": 900,
                "consumers": 0,
                "dead_letter_exchange": None,
            },
            {
                "vhost": "/",
                "name": "demo-celery-tasks",
                "messages": 3,
                "consumers": 1,
                "dead_letter_exchange": "demo-dlx",
            },
            {
                "vhost": "/",
                "name": "demo-orders",
                "messages": 40,
                "consumers": 2,
                "dead_letter_exchange": "demo-dlx",
            },
            {
                "vhost": "/",
                "name": "old-orders",
                "messages": 5000,
                "consumers": 3,
                "dead_letter_exchange": "dlx",
            },
        ]
    },
    "/api/clusters/r/rabbitmq/exchanges": {
        "items": [
            {"vhost": "/", "name": ""},
            {"vhost": "/", "name": "amq.direct"},
            {"vhost": "/", "name": "celery-tasks"},
            {"vhost": "/", "name": "demo-orders"},
        ]
    },
    "/api/clusters/k/kafka/topics": {
        "topics": [
            {"name": "__consumer_offsets", "internal": True, "messages": 10_000},
            {"name": "a-leftover", "internal": False, "messages": 2},
            {"name": "demo-user-events", "internal": False, "messages": 800},
            {"name": "demo-user-events-dlq", "internal": False, "messages": 90},
            {"name": "z-other", "internal": False, "messages": 9000},
        ]
    },
    "/api/clusters/k/kafka/groups": {
        "groups": [
            {"group_id": "a-capture", "has_commits": True, "members": 0},
            {"group_id": "demo-capture-local-kafka", "has_commits": True, "members": 1},
            {"group_id": "demo-user-events-processor", "has_commits": True, "members": 2},
            {"group_id": "demo-idle", "has_commits": False, "members": 5},
        ]
    },
    "/api/deadletters/letters": {"items": [{"id": 7}]},
    "/api/jobs": {"jobs": [{"id": 3, "state": "running"}, {"id": 2, "state": "done"}]},
    "/api/deadletters/schedules": {"schedules": [{"id": 4}]},
}


class FakeResponse:
    def __init__(self, body: object) -> None:
        self.ok = body is not None
        self.body = body

    def json(self) -> object:
        return self.body


class FakeRequest:
    """The running dashboard's JSON API; a name filter (``q``, ``name``) is applied."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get(self, url: str) -> FakeResponse:
        self.asked.append(url)
        parts = urlsplit(url)
        body = BROKER.get(parts.path)
        contains = parse_qs(parts.query).get("q", parse_qs(parts.query).get("name", [""]))[0]
        if isinstance(body, dict) and contains:
            body = {
                key: [i for i in rows if contains in i.get("name", i.get("group_id", ""))]
                if isinstance(rows, list)
                else rows
                for key, rows in body.items()
            }
        return FakeResponse(body)


@dataclass
class FakeContext:
    request: FakeRequest


def test_discover_takes_the_busiest_queue_topic_and_group() -> None:
    script = load_script()

    targets, missing = script.discover(FakeContext(FakeRequest()), "http://x")

    assert missing == set()
    # With a dead-letter exchange and consumers, the deepest; its vhost's first named exchange.
    assert (targets.vhost, targets.queue) == ("/", "old-orders")
    assert targets.topic == "z-other"  # the most records, never an internal topic
    assert targets.group == "demo-user-events-processor"  # commits and the most members
    assert (targets.letter, targets.job, targets.schedule) == (7, 2, 4)


def test_discover_prefers_the_demos_own_entities_when_the_demo_has_a_prefix() -> None:
    script = load_script()

    targets, _missing = script.discover(FakeContext(FakeRequest()), "http://x", prefix="demo-")

    assert targets.queue == "demo-orders"
    assert targets.exchange == "demo-orders"
    assert targets.topic == "demo-user-events"
    assert targets.group == "demo-user-events-processor"


def test_the_demos_prefix_comes_from_the_environment_or_the_command_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = load_script()
    monkeypatch.setenv("DEMO_PREFIX", "review-")

    assert script.options(["--password", "p"]).prefix == "review-"
    assert script.options(["--password", "p", "--prefix", ""]).prefix == ""
