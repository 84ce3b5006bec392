"""Reading sources and writing fixes without ever losing a file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path


class ChangedOnDisk(Exception):
    """The file changed between our read and our write: we do not overwrite it."""


def read_bytes(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def atomic_write(path: Path, data: bytes, expected_digest: str | None = None) -> None:
    """Write via a temp file in the same directory, fsync, then rename.

    Keeps the file's permission bits. If `expected_digest` is given and the
    file no longer has that content, raise ChangedOnDisk and write nothing.
    Symlinks are followed: the link's target is replaced, the link kept.
    """
    target = Path(os.path.realpath(path))
    directory = target.parent
    mode = stat.S_IMODE(os.stat(target).st_mode)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".aiperf-tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        if expected_digest is not None and digest(read_bytes(target)) != expected_digest:
            raise ChangedOnDisk(str(path))
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
