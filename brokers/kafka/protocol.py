"""A minimal Kafka ApiVersions (v3) exchange, to learn a broker's version.

Kafka never states its software version on the wire, and librdkafka does not
expose the features a broker advertises. ApiVersions v3 carries them: the
highest ``metadata.version`` level the broker's software supports maps to its
release (4.1 supports up to ``4.1-IV1``), and the finalized level is the
version the cluster currently runs at. Plaintext only: on a TLS or SASL
listener the probe gives up and the version is shown as unknown.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

API_VERSIONS = 18

# metadata.version feature levels -> the release that introduced them
# (org.apache.kafka.server.common.MetadataVersion, checked against the 4.1.2 jar).
METADATA_VERSION_RELEASE: dict[int, str] = {
    1: "3.0", 2: "3.1", 3: "3.2", 4: "3.3", 5: "3.3", 6: "3.3", 7: "3.3",
    8: "3.4", 9: "3.5", 10: "3.5", 11: "3.5", 12: "3.6", 13: "3.6", 14: "3.6",
    15: "3.7", 16: "3.7", 17: "3.7", 18: "3.7", 19: "3.7", 20: "3.8", 21: "3.9",
    22: "4.0", 23: "4.0", 24: "4.0", 25: "4.0", 26: "4.1", 27: "4.1", 28: "4.2", 29: "4.2",
}  # fmt: skip


@dataclass(frozen=True)
class Features:
    supported_metadata_version: int | None
    finalized_metadata_version: int | None


def probe_broker_version(host: str, port: int, timeout: float) -> str | None:
    """Return e.g. ``"4.1"``, or None when the broker does not say."""
    try:
        features = fetch_features(host, port, timeout)
    except (OSError, ValueError, struct.error):
        return None
    return release_name(features.supported_metadata_version)


def release_name(level: int | None) -> str | None:
    if level is None:
        return None
    if level in METADATA_VERSION_RELEASE:
        return METADATA_VERSION_RELEASE[level]
    newest = max(METADATA_VERSION_RELEASE)
    if level > newest:
        return f"newer than {METADATA_VERSION_RELEASE[newest]}"
    return None


def fetch_features(host: str, port: int, timeout: float) -> Features:
    client_id = b"mqboard"
    software = b"mqboard"
    header = struct.pack(">hhih", API_VERSIONS, 3, 1, len(client_id)) + client_id + b"\x00"
    body = _compact(software) + _compact(b"1") + b"\x00"
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv(sock, 4))
        if not 0 < size < 1_000_000:
            raise ValueError(f"implausible response size {size}")
        payload = _recv(sock, size)
    return _parse(payload)


def _parse(payload: bytes) -> Features:
    reader = _Reader(payload)
    reader.int32()  # correlation id (response header v0)
    error = reader.int16()
    if error:
        raise ValueError(f"ApiVersions error {error}")
    for _ in range(reader.uvarint() - 1):
        reader.skip(6)
        reader.skip_tags()
    reader.int32()  # throttle
    supported = finalized = None
    for _ in range(reader.uvarint()):
        tag = reader.uvarint()
        size = reader.uvarint()
        field = _Reader(reader.take(size))
        if tag == 0:  # SupportedFeatures: name, min, max
            for _ in range(field.uvarint() - 1):
                name = field.compact_string()
                field.int16()
                level = field.int16()
                field.skip_tags()
                if name == "metadata.version":
                    supported = level
        elif tag == 2:  # FinalizedFeatures: name, max, min
            for _ in range(field.uvarint() - 1):
                name = field.compact_string()
                level = field.int16()
                field.int16()
                field.skip_tags()
                if name == "metadata.version":
                    finalized = level
    return Features(supported, finalized)


def _compact(data: bytes) -> bytes:
    return _uvarint(len(data) + 1) + data


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _recv(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed mid-response")
        data.extend(chunk)
    return bytes(data)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated response")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def skip(self, n: int) -> None:
        self.take(n)

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.take(1)[0]
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 28:
                raise ValueError("varint too long")

    def compact_string(self) -> str:
        length = self.uvarint() - 1
        return self.take(max(length, 0)).decode("utf-8", "replace")

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.skip(self.uvarint())
