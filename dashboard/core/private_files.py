"""The state directory and the SQLite database are readable by their owner only.

The database holds dead letters (message bodies), the audit trail and password
hashes; the state directory also holds the secret key. A new directory is
0700 and a new file 0600. Existing ones lose group and other read and write,
but keep any search ("x") bit: the service scripts give RabbitMQ, which runs
as its own user, a way through to its own data directory (``ops/lib.sh``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_GROUP_OTHER_RW = 0o066
_GROUP_OTHER_ALL = 0o077


def _tighten(path: Path, remove: int) -> None:
    try:
        status = path.stat()
        if status.st_uid == os.geteuid() and status.st_mode & remove:
            path.chmod(status.st_mode & 0o7777 & ~remove)
    except OSError:  # someone else's, or gone: nothing we may change
        pass


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) or take group/other read and write off it."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    _tighten(path, _GROUP_OTHER_RW)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty (mode 0600) unless it exists; either way owner-only.

    SQLite creates its ``-wal`` and ``-shm`` files with the database file's mode,
    so creating the database file first is what keeps them private too.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        _tighten(each, _GROUP_OTHER_ALL)
    return path


def sqlite_file(name: object) -> Path | None:
    """The file of a SQLite database NAME, or None for an in-memory or URI one."""
    text = str(name or "")
    if not text or text == ":memory:" or text.startswith("file:"):
        return None
    return Path(text)
