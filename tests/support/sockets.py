"""This process's open TCP connections to a port, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def connections_to(port: int, pid: int | None = None) -> set[int]:
    """Local ports of the process's established TCP connections to ``port``."""
    pid = pid or os.getpid()
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            # 01: ESTABLISHED
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                found.add(int(local.rsplit(":", 1)[1], 16))
    return found
