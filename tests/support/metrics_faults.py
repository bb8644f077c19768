"""Shared parts of the fault tests: private services, a served dashboard, a browser.

No tests here; the ``test_metrics_faults_*`` modules import what they need.
The shared services (RabbitMQ, Kafka, Redis on their usual ports) are never
stopped: a fault test breaks only a private Redis or a private Kafka it starts
itself, on free ports, in a temporary state directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import PYTHON, ROOT, free_port, wait_for_port
from tests.settings import RUN_ID
from tests.support.metrics import log_tail

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
USER, PASSWORD = "olga", "browser-pass-1"  # made by the served_db fixture

# Records every state the chart's websocket goes through (connecting, open,
# closed...) in window.mqbStates, from the moment the page starts.
RECORD_STATES = """
window.mqbStates = [];
new MutationObserver(function (changes) {
  changes.forEach(function (c) {
    if (c.attributeName === "data-state") window.mqbStates.push(c.target.dataset.state);
  });
}).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-state"] });
"""


def log_path(name: str) -> Path:
    path = ROOT / "var" / "log" / f"test-faults-{name}-{RUN_ID}-{uuid.uuid4().hex[:6]}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class PrivateRedis:
    """A redis-server of our own (no persistence), which a test may kill -9 and restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = log_path("redis")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                    "--daemonize", "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port(self.port, self.process, timeout=15)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the clients, every key lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


class PrivateKafka:
    """A one-node Kafka of our own (``ops/kafka.sh``), on free ports, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.env = dict(
            os.environ,
            MQB_STATE_DIR=str(directory),
            MQB_KAFKA_PORT=str(free_port()),
            MQB_KAFKA_CONTROLLER_PORT=str(free_port()),
        )
        self.bootstrap = f"127.0.0.1:{self.env['MQB_KAFKA_PORT']}"
        self.log = directory / "log" / "kafka.log"

    def _run(self, action: str) -> None:
        result = subprocess.run(
            ["ops/kafka.sh", action],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"ops/kafka.sh {action} failed: {result.stderr.decode()[-1500:]}"
                f"\n{log_tail(self.log)}"
            )

    def up(self) -> None:
        self._run("up")

    def down(self) -> None:
        self._run("down")


@contextlib.contextmanager
def served_dashboard(env: dict[str, str]) -> Iterator[str]:
    """Daphne on a free port with ``env`` (its own Redis, clusters...); yields its URL."""
    port = free_port()
    path = log_path("daphne")
    with open(path, "wb") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "dashboard.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for_port(port, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def logged_in_page(browser: Any, base_url: str) -> Any:
    context = browser.new_context()  # more pages of the same session: page.context.new_page()
    context.add_init_script(RECORD_STATES)
    page = context.new_page()
    page.goto(base_url + "/login/")
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    return page


def chart(page: Any, name: str) -> str:
    """A data-* attribute of the (first) chart on the page."""
    return str(page.get_attribute("[data-metrics-chart]", f"data-{name}") or "")


def wait_chart(page: Any, condition: str, what: str, timeout: float, *logs: Path) -> None:
    """Wait until the JS ``condition`` on ``c`` (the chart element) holds."""
    try:
        page.wait_for_function(
            f"() => {{ const c = document.querySelector('[data-metrics-chart]');"
            f" return !!c && ({condition}); }}",
            timeout=timeout * 1000,
        )
    except Exception as exc:
        text = page.inner_text("[data-metrics-chart]")
        tails = "\n".join(f"--- {p.name}\n{log_tail(p)}" for p in logs)
        raise AssertionError(f"{what} within {timeout} s; chart:\n{text}\n{tails}") from exc


def log_of(process: subprocess.Popen[bytes]) -> Path:
    """The log file ``collector_process`` gave the process."""
    return Path(process.log_path)  # type: ignore[attr-defined]
