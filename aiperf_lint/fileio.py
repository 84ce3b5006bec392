"""Reading sources and writing fixes without ever losing a file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path


class ChangedOnDisk(Exception):
    """The file changed between our read and our write: we do not overwrite it."""


class NotRegularFile(OSError):
    """A FIFO, socket or device named like a source file: reading it could block forever."""


def read_bytes(path: Path) -> bytes:
    """The file's bytes. Opened non-blocking and checked with fstat on the open
    descriptor, so a FIFO named `x.py` is refused instead of hanging the run."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
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
