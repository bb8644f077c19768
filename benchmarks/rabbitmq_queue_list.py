"""The queue list at 10,000 (and 50,000) queues: the dashboard's page against RabbitMQ's API.

Creates a vhost with 10,000 queues (one definitions import), puts messages in
some of them, waits until the management statistics show them, starts a real
collector (``manage.py collect``, every 5 s, sampling that vhost only) and a
Daphne, waits until the collector's snapshot shows the messages, then measures
the first page (100 rows) sorted by depth (descending) and filtered by the
name substring "orders" (a tenth of the queues):

* ``api``: the dashboard's JSON API, and ``html``: its HTML page, answered from
  the collector's snapshot, both over real HTTP through Daphne on a temporary
  SQLite database, with a logged-in session (keep-alive connection);
* ``live``: the JSON API with ``live=1`` (the page's *Refresh now*);
* ``raw``: the management API request the live read makes for that page (same
  parameters: paginated, sorted, filtered, columns trimmed, ``disable_stats``),
  straight to RabbitMQ. (The unpaginated ``GET /api/queues`` is no longer
  measured: on a shared broker with other benchmarks' queues it took RabbitMQ
  down to a dropped connection.)

All interleaved in the same run (in a shuffled order each round), REPS rounds
after a warm-up; medians reported. The collector keeps sampling meanwhile (its
cost lands on both sides). With ``--50k`` (or ``BENCH_50K=1``) the same again
at 50,000 queues (creating them takes minutes). The vhosts are deleted at the
end. Last line: ``RESULT page_vs_api=<slower dashboard / raw>
page_vs_api_50k=<the same at 50k, or skipped> growth=<the slower dashboard request at
50k over the same at 10k, or skipped> floor_growth=<the same for a logged-in request
that reads nothing> growth_beyond_floor=<growth / floor_growth>`` (the last two with
``--50k``): on one machine the broker's own work for 50,000 queues slows every
process, the floor shows by how much.

Run: ``.venv/bin/python benchmarks/rabbitmq_queue_list.py [--50k]`` with the
local services up (``ops/up.sh``).

The broker is the shared one of ``ops/up.sh`` unless ``MQB_RABBITMQ_URL`` (AMQP,
with credentials; its path is ignored) and ``MQB_RABBITMQ_MANAGEMENT_URL`` name
another, e.g. a node of its own for 50,000 queues, so that a shared broker is not
slowed (``MQB_STATE_DIR=$PWD/var/scale MQB_RABBITMQ_PORT=5691
MQB_RABBITMQ_MGMT_PORT=15691 MQB_RABBITMQ_NODENAME=mqb-scale@localhost
ops/rabbitmq.sh up``, then ``MQB_RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5691/
MQB_RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:15691``). The dashboard's
processes it starts read the same variables (the default cluster), and
``MQB_RABBITMQ_PROMETHEUS_URL`` too: set, the collector reads the queues from the
node's Prometheus endpoint instead of the management API's pages.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brokers.rabbitmq.inventory import page_params  # noqa: E402
from brokers.rabbitmq.models import QueueQuery  # noqa: E402

MGMT = os.environ.get("MQB_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672").rstrip("/")
AMQP = os.environ.get("MQB_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
GUEST = ("guest", "guest")
QUEUES = 10_000
QUEUES_LARGE = 50_000
LARGE = "--50k" in sys.argv or os.environ.get("BENCH_50K") == "1"
INTERVAL = 5  # the collector's sample interval
FILLED = 300  # queues that get messages, so that "by depth" means something
REPS = int(os.environ.get("REPS", "9"))
PYTHON = sys.executable
SLUG = "local-rabbitmq"


def q(name: str) -> str:
    return quote(name, safe="")


def queue_name(i: int) -> str:
    return f"bench-{i:05d}-{'orders' if i % 10 == 0 else 'misc'}"


def amqp_url(vhost: str) -> str:
    """``AMQP`` with ``vhost`` as its path."""
    parts = urlsplit(AMQP)
    return urlunsplit((parts.scheme, parts.netloc, "/" + q(vhost), parts.query, ""))


def create_queues(http: httpx.Client, vhost: str, count: int) -> None:
    http.put(f"/api/vhosts/{q(vhost)}").raise_for_status()
    http.put(
        f"/api/permissions/{q(vhost)}/guest",
        json={"configure": ".*", "write": ".*", "read": ".*"},
    ).raise_for_status()
    definitions = {
        "queues": [
            {
                "name": queue_name(i),
                "vhost": vhost,
                "durable": False,
                "auto_delete": False,
                "arguments": {"x-dead-letter-exchange": "dlx"} if i % 7 == 0 else {},
            }
            for i in range(count)
        ]
    }
    http.post(f"/api/definitions/{q(vhost)}", json=definitions, timeout=300).raise_for_status()


async def fill_queues(vhost: str) -> int:
    """Messages into FILLED of the "orders" queues: queue i gets i % 23 + 1."""
    import aio_pika

    connection = await aio_pika.connect(amqp_url(vhost))
    top = 0
    try:
        channel = await connection.channel(publisher_confirms=True)
        for n in range(FILLED):
            count = n % 23 + 1
            top = max(top, count)
            name = queue_name(n * 10)
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(aio_pika.Message(b"x" * 64), name)
                    for _ in range(count)
                )
            )
    finally:
        await connection.close()
    return top


def wait_for_stats(http: httpx.Client, vhost: str, top: int, count: int) -> None:
    params = {"page": "1", "page_size": "1", "sort": "messages", "sort_reverse": "true"}
    params.update({"disable_stats": "true", "enable_queue_totals": "true", "columns": "messages"})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        data = http.get(f"/api/queues/{q(vhost)}", params=params).json()
        if data.get("total_count") == count and data["items"][0].get("messages") == top:
            return
        time.sleep(1)
    raise SystemExit("the management statistics never showed the messages")


def delete_vhost(vhost: str) -> None:
    """Delete ``vhost``, again until it is gone: RabbitMQ drops a request after 60 s, and
    deleting 50,000 queues can take longer (each attempt deletes some)."""
    # Connections of their own: a kept-alive one may have been closed while idle.
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=300) as http:
        for _ in range(20):
            try:
                http.delete(f"/api/vhosts/{q(vhost)}")
                if http.get(f"/api/vhosts/{q(vhost)}").status_code == 404:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
    print(f"vhost {vhost} could not be deleted", file=sys.stderr)


def start_daphne(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MQB_DEFAULT_CLUSTERS": "rabbitmq",
        "MQB_USER_PASSWORD": "bench-pass-1",
        "MQB_LOG_LEVEL": "WARNING",
        # Measure, don't give up: a loaded machine can make one page take seconds.
        "MQB_BROKER_TIMEOUT": "60",
    }
    env.pop("MQB_CLUSTERS_FILE", None)
    for command in (["migrate", "--no-input", "-v0"], ["ensure_user", "bench", "--role", "viewer"]):
        subprocess.run(
            [PYTHON, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(workdir / "daphne.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/login/", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("Daphne did not start; see " + str(workdir / "daphne.log"))


def log_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    form = client.get("/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, "no CSRF token on the login page"
    response = client.post(
        "/login/",
        data={
            "username": "bench",
            "password": "bench-pass-1",
            "csrfmiddlewaretoken": token.group(1),
        },
        headers={"Referer": url + "/login/"},
    )
    assert response.status_code == 302, f"login failed: {response.status_code}"
    return client


def timed(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    if not response.is_redirect:  # the floor is a redirect
        response.raise_for_status()
    return elapsed


def start_collector(workdir: Path, vhost: str) -> subprocess.Popen[bytes]:
    """``manage.py collect`` sampling the benchmark's vhost, on its own database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{workdir / 'collector.sqlite3'}",
        "MQB_DEFAULT_CLUSTERS": "rabbitmq",
        "MQB_METRICS_RABBITMQ_VHOSTS": vhost,
        "MQB_LOG_LEVEL": "WARNING",
        "MQB_BROKER_TIMEOUT": "60",
    }
    env.pop("MQB_CLUSTERS_FILE", None)
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    log = open(workdir / "collector.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [PYTHON, "manage.py", "collect", "--only", "metrics", "--interval", str(INTERVAL)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for_snapshot(dashboard: httpx.Client, params: dict[str, str], top: int) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        data = dashboard.get(f"/api/clusters/{SLUG}/rabbitmq/queues", params=params).json()
        if data.get("source") == "snapshot" and data["items"][0]["messages"] == top:
            return
        time.sleep(1)
    raise SystemExit("the collector's snapshot never showed the messages")


def measure(count: int) -> dict[str, float]:
    """Medians (s) of every kind of request at ``count`` queues, one vhost of its own."""
    vhost = f"mqb-bench-{uuid.uuid4().hex[:8]}"
    query = QueueQuery(vhost=vhost, name="orders", sort="depth", reverse=True, page_size=100)
    raw_params = page_params(query, 1, 100)
    page_query = {
        "vhost": vhost,
        "name": "orders",
        "sort": "depth",
        "reverse": "1",
        "page_size": "100",
    }
    live_query = {**page_query, "live": "1"}
    http = httpx.Client(base_url=MGMT, auth=GUEST, timeout=300)
    processes: list[subprocess.Popen[bytes]] = []
    workdir = Path(tempfile.mkdtemp(prefix="mqb-bench-"))
    # The web process must know the collector samples only this vhost.
    os.environ["MQB_METRICS_RABBITMQ_VHOSTS"] = vhost
    try:
        started = time.monotonic()
        create_queues(http, vhost, count)
        print(f"created {count} queues in {time.monotonic() - started:.1f} s", flush=True)
        top = asyncio.run(fill_queues(vhost))
        wait_for_stats(http, vhost, top, count)
        print(f"statistics ready after {time.monotonic() - started:.1f} s", flush=True)
        processes.append(start_collector(workdir, vhost))
        daphne, url = start_daphne(workdir)
        processes.append(daphne)
        dashboard = log_in(url)
        wait_for_snapshot(dashboard, page_query, top)
        print(f"snapshot ready after {time.monotonic() - started:.1f} s", flush=True)

        def raw() -> httpx.Response:
            return http.get(f"/api/queues/{q(vhost)}", params=raw_params)

        def api() -> httpx.Response:
            return dashboard.get(f"/api/clusters/{SLUG}/rabbitmq/queues", params=page_query)

        def html() -> httpx.Response:
            return dashboard.get(f"/rabbitmq/{SLUG}/", params=page_query)

        def live() -> httpx.Response:
            return dashboard.get(f"/api/clusters/{SLUG}/rabbitmq/queues", params=live_query)

        def floor() -> httpx.Response:
            return dashboard.get("/rabbitmq/")  # logged in, no broker or snapshot read

        first = api().json()
        assert first["source"] == "snapshot", first
        assert len(first["items"]) == 100 and first["items"][0]["messages"] == top, first
        assert first["filtered"] == count // 10 and first["requests"] == 0
        assert live().json()["source"] == "live"
        assert "bench-" in html().text
        assert floor().status_code == 302
        kinds = {"raw": raw, "api": api, "html": html, "live": live, "floor": floor}
        for call in kinds.values():  # warm-up: connections, caches
            timed(call)
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        order = list(kinds)
        shuffle = random.Random(7).shuffle
        for _ in range(REPS):
            shuffle(order)  # no kind always runs right after another
            for kind in order:
                samples[kind].append(timed(kinds[kind]))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
        http.close()
        delete_vhost(vhost)
    medians = {kind: statistics.median(values) for kind, values in samples.items()}
    print(f"\n{count} queues in vhost {vhost}; first page of 100, name ~ 'orders', by depth")
    print(f"{'request':<48} {'median ms':>10} {'min':>8} {'max':>8}")
    labels = {
        "raw": "management API, the same paginated request",
        "api": "dashboard JSON API from the snapshot",
        "html": "dashboard HTML page from the snapshot",
        "live": "dashboard JSON API, live=1 (Refresh now)",
        "floor": "floor: a logged-in redirect, no broker work",
    }
    for kind, label in labels.items():
        values = samples[kind]
        print(
            f"{label:<48} {medians[kind] * 1000:>10.1f}"
            f" {min(values) * 1000:>8.1f} {max(values) * 1000:>8.1f}"
        )
    return medians


def main() -> None:
    # Snapshot keys of their own: no other dashboard's collector writes them.
    os.environ["MQB_CHANNEL_PREFIX"] = f"mqb-bench-{uuid.uuid4().hex[:8]}"
    ratios, pages, floors = {}, {}, {}
    for count in (QUEUES, *((QUEUES_LARGE,) if LARGE else ())):
        medians = measure(count)
        slower = max(medians["api"], medians["html"])
        ratios[count], pages[count] = slower / medians["raw"], slower
        floors[count] = medians["floor"]
        print(
            f"rounds: {REPS}; api/raw {medians['api'] / medians['raw']:.2f},"
            f" html/raw {medians['html'] / medians['raw']:.2f},"
            f" live api/raw {medians['live'] / medians['raw']:.2f}",
            flush=True,
        )
    large = f"{ratios[QUEUES_LARGE]:.2f}" if LARGE else "skipped"
    growth = f"{pages[QUEUES_LARGE] / pages[QUEUES]:.2f}" if LARGE else "skipped"
    # The floor slows too when the machine is busier at 50k (the broker's own work for
    # 50,000 queues shares its cores): growth beyond the floor's is the page's own.
    floor_growth = floors[QUEUES_LARGE] / floors[QUEUES] if LARGE else None
    extra = (
        f" floor_growth={floor_growth:.2f}"
        f" growth_beyond_floor={pages[QUEUES_LARGE] / pages[QUEUES] / floor_growth:.2f}"
        if floor_growth
        else ""
    )
    print(f"RESULT page_vs_api={ratios[QUEUES]:.2f} page_vs_api_50k={large} growth={growth}{extra}")


if __name__ == "__main__":
    main()
