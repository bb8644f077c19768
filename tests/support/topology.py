"""The production topology in a test: ops/nginx.sh in front of ops/Procfile.prod's processes.

``start_topology`` runs the named lines of ``ops/Procfile.prod`` (the real
commands) under ``scripts/supervise.py``, which restarts one that dies, with
the web ports and the state dir of the test, and ``ops/nginx.sh up`` in front
of the web processes on a free port; ``stop_topology`` stops both. The state
dir is under the checkout's ``var/``: nginx's workers run as ``nobody`` when
the tests run as root and must pass through to the static files.

``WebSocket`` is a small RFC 6455 client (text frames, the server's pings
answered) for talking to the websockets through nginx with a session cookie;
``access_log_upstreams`` reads which Daphne nginx sent each request to.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "ops" / "Procfile.prod"
SYSTEMD = ROOT / "ops" / "systemd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def procfile_entries(path: Path = PROCFILE) -> dict[str, str]:
    """``name: command`` lines of a Procfile, in order."""
    entries: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


@dataclass
class Topology:
    url: str  # nginx
    web_ports: list[int]
    state: Path
    env: dict[str, str]
    supervisor: subprocess.Popen[bytes]
    log: Any
    names: list[str] = field(default_factory=list)

    @property
    def access_log(self) -> Path:
        return self.state / "log" / "nginx-access.log"

    @property
    def nginx_port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def start_topology(env: dict[str, str], names: list[str], tag: str) -> Topology:
    """nginx and the ``names`` lines of ops/Procfile.prod; ``env`` is the processes' environment."""
    state = ROOT / "var" / f"test-topology-{tag}"
    shutil.rmtree(state, ignore_errors=True)
    (state / "log").mkdir(parents=True)
    # nginx's workers (nobody) pass through var/ (created 0700) to the static files: the
    # same o+x that `make topology` gives it, whichever test runs first.
    var = ROOT / "var"
    var.chmod(var.stat().st_mode | 0o001)
    entries = procfile_entries()
    procfile = state / "Procfile"
    procfile.write_text("".join(f"{name}: {entries[name]}\n" for name in names))
    web_ports = [free_port(), free_port()]
    nginx_port = free_port()
    env = {
        **env,
        "MQB_STATE_DIR": str(state),
        "MQB_WEB1_PORT": str(web_ports[0]),
        "MQB_WEB2_PORT": str(web_ports[1]),
        "MQB_NGINX_PORT": str(nginx_port),
        "MQB_WEB_ADDRESSES": " ".join(f"127.0.0.1:{p}" for p in web_ports),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    subprocess.run([str(ROOT / "ops" / "nginx.sh"), "up"], cwd=ROOT, env=env, check=True)
    log = open(state / "log" / "supervise.log", "wb")  # noqa: SIM115
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "scripts/supervise.py",
            "-f",
            str(procfile),
            "--log-dir",
            str(state / "log"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    topology = Topology(
        f"http://127.0.0.1:{nginx_port}", web_ports, state, env, supervisor, log, names
    )
    deadline = time.monotonic() + 90
    while not all(port_open(p) for p in web_ports):
        if supervisor.poll() is not None or time.monotonic() > deadline:
            stop_topology(topology)
            raise RuntimeError(f"the web processes did not listen; see {state / 'log'}")
        time.sleep(0.2)
    return topology


def stop_topology(topology: Topology) -> None:
    if topology.supervisor.poll() is None:
        topology.supervisor.send_signal(signal.SIGTERM)
        try:
            topology.supervisor.wait(timeout=30)
        except subprocess.TimeoutExpired:
            topology.supervisor.kill()
            topology.supervisor.wait()
    topology.log.close()
    subprocess.run(
        [str(ROOT / "ops" / "nginx.sh"), "down"], cwd=ROOT, env=topology.env, check=False
    )
    if port_open(topology.nginx_port):
        raise RuntimeError(f"nginx still listens on {topology.nginx_port} after ops/nginx.sh down")
    # The logs stay for a look after a failure; the copies of the static files go.
    shutil.rmtree(topology.state / "staticfiles", ignore_errors=True)
    shutil.rmtree(topology.state / "nginx", ignore_errors=True)


def listening_pid(port: int) -> int:
    """The pid of the process listening on 127.0.0.1:``port`` (from ``ss``)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"pid=(\d+)", out)
    if not match:
        raise AssertionError(f"nothing listens on {port}: {out!r}")
    return int(match.group(1))


_LINE = re.compile(r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) .*upstream=(?P<up>\S+)')


def access_log_upstreams(log: Path, path_prefix: str, since: int = 0) -> list[tuple[str, int, str]]:
    """(path, status, upstream addresses) of the logged requests under ``path_prefix``,
    from byte offset ``since``. A retried request names every upstream it tried."""
    rows = []
    with open(log, "rb") as handle:
        handle.seek(since)
        for line in handle.read().decode("utf-8", "replace").splitlines():
            match = _LINE.search(line)
            if match and match["path"].startswith(path_prefix):
                rows.append((match["path"], int(match["status"]), match["up"]))
    return rows


class WebSocket:
    """A blocking websocket client: enough for JSON text frames from Channels."""

    def __init__(self, port: int, path: str, *, cookie: str, origin: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {origin}\r\nCookie: {cookie}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {head!r}")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("websocket closed")
            data += chunk
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = secrets.token_bytes(4)
        head = bytes([0x80 | opcode])
        if len(payload) < 126:
            head += bytes([0x80 | len(payload)])
        else:
            head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def receive_json(self, timeout: float = 15) -> dict[str, Any]:
        """The next text frame as JSON (pings answered on the way)."""
        self.sock.settimeout(timeout)
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError(f"websocket closed by the server: {payload!r}")
            elif opcode == 0x1:
                result: dict[str, Any] = json.loads(payload)
                return result

    def close(self) -> None:
        if self.status != 101:  # refused: an HTTP answer, no websocket to close
            self.sock.close()
            return
        try:
            self._send(0x8, struct.pack("!H", 1000))
            self.sock.settimeout(2)
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.sock.close()


def environment_of_example() -> dict[str, str]:
    """The variables ops/mqboard.env.example sets (quotes taken off)."""
    values = {}
    for raw in (ROOT / "ops" / "mqboard.env.example").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value.strip('"')
    return values


def expand(command: str, values: dict[str, str]) -> str:
    """``${NAME:-default}`` and ``${NAME}`` filled in from ``values`` (else the default)."""

    def one(match: re.Match[str]) -> str:
        name, default = match["name"], match["default"]
        if name in values:
            return values[name]
        if default is None:
            raise KeyError(f"{name} is neither set nor given a default")
        return str(default)

    return re.sub(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}", one, command)


def unit_settings(path: Path) -> dict[str, str]:
    settings: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            settings.setdefault(key, value)
    return settings
