"""Verifier side of one child runner process (see child.py for the protocol)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

# The directory that holds the aiperf_lint package, so the child can import it from
# wherever the verifier was imported (source tree or site-packages).
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
CHILD_BOOT = "import sys; sys.path.insert(0, sys.argv.pop(1)); from aiperf_lint.verify.child import main; sys.exit(main())"

CHILD_ENV = {
    # Pin glibc malloc so peak-RSS readings repeat to ~0.1 MiB (see the CPU notes).
    "MALLOC_MMAP_THRESHOLD_": "1048576",
    # Same str hashes in both variants: set/dict iteration order cannot differ by chance.
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class RunnerError(Exception):
    """One variant failed (crash, timeout, error in the pair's code): one-line reason."""


class ChildRunner:
    def __init__(
        self, pair_file: Path, size: int, device: str, timeout_s: float, memory_cap_mib: int
    ):
        self.pair_file = pair_file
        self.size = size
        self.device = device
        self.timeout_s = timeout_s
        self.memory_cap_mib = 0 if device == "cuda" else memory_cap_mib  # CUDA reserves huge VM
        self.process: subprocess.Popen | None = None
        self.connection: Connection | None = None
        self.workdir: str | None = None
        self.log = None
        self.deadline = 0.0

    @property
    def name(self) -> str:
        return self.pair_file.name

    def start(self) -> dict:
        """Spawn the child and wait for its setup(); returns {"setup_s": ...}."""
        ours, theirs = socket.socketpair()
        self.workdir = tempfile.mkdtemp(prefix="aiperf-verify-")
        self.log = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed in close())
        command = [
            sys.executable,
            "-c",
            CHILD_BOOT,
            PACKAGE_ROOT,
            str(theirs.fileno()),
            str(self.pair_file.resolve()),
            str(self.size),
            self.device,
            str(self.memory_cap_mib),
        ]
        self.deadline = time.monotonic() + self.timeout_s
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,  # files a pair writes land in a scratch dir, not in fixtures/
            env={**os.environ, **CHILD_ENV},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # its own process group: a timeout also ends its workers
        )
        theirs.close()
        self.connection = Connection(ours.detach())
        return self._receive("setup")

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def request(self, phase: str, *message):
        try:
            self.connection.send(message)
        except (BrokenPipeError, ConnectionResetError):
            raise RunnerError(self._death_message(phase)) from None
        return self._receive(phase)

    def _receive(self, phase: str):
        if not self.connection.poll(max(0.0, self.remaining_s())):
            self._kill()
            raise RunnerError(
                f"{self.name}: timed out after {self.timeout_s:g} s (timeout_s) during {phase}"
            )
        try:
            status, value = self.connection.recv()
        except (EOFError, ConnectionResetError):
            raise RunnerError(self._death_message(phase)) from None
        if status == "error":
            raise RunnerError(f"{self.name}: {value}")
        return value

    def _death_message(self, phase: str) -> str:
        self._wait_exited(timeout_s=5)
        exited = self._has_exited()
        self._kill()  # reaps it, and ends workers it may have left behind
        code = self.process.returncode if exited else None
        reason = (
            f"exit code {code}" if code is None or code >= 0 else f"killed by {_signal_name(-code)}"
        )
        tail = self._last_output_line()
        return f"{self.name}: process died ({reason}) during {phase}" + (
            f"; last output: {tail}" if tail else ""
        )

    def _last_output_line(self) -> str:
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line]
        return lines[-1][:200] if lines else ""

    def close(self, kill: bool = False) -> None:
        if self.connection is not None and not kill:
            with contextlib.suppress(OSError):
                self.connection.send(("exit",))
        if self.process is not None:
            if not kill:
                self._wait_exited(timeout_s=10)
            self._kill()  # also ends processes the pair left behind in its group
        if self.connection is not None:
            self.connection.close()
        if self.log is not None:
            self.log.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.connection = self.log = self.workdir = None

    def _wait_exited(self, timeout_s: float) -> None:
        """Wait for the child to exit without reaping it, so its group id stays ours."""
        stop = time.monotonic() + timeout_s
        while time.monotonic() < stop and not self._has_exited():
            time.sleep(0.005)

    def _has_exited(self) -> bool:
        """Exited (maybe still a zombie)? Uses waitid(WNOWAIT) where the OS has it."""
        if self.process.returncode is not None:
            return True
        if not hasattr(os, "waitid"):  # e.g. macOS: reaping here is the only way to ask
            return self.process.poll() is not None
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, self.process.pid, flags) is not None
        except ChildProcessError:
            return True

    def _kill(self) -> None:
        """SIGKILL the process group created at spawn, then reap the child."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> ChildRunner:
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.close(kill=exc_type is not None)  # e.g. Ctrl-C: do not wait for the child


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
