"""The child "runner": one fresh process per variant (before.py or after.py).

It loads the pair module, seeds, calls ``setup(size, device)`` once outside any timed
region, then serves requests from the verifier over a socket until told to exit:

    ("first",)                 run once, measuring peak memory; keep the result
    ("result",)                the kept result, pickled with tensors moved to the CPU
    ("compare", bytes, rtol, atol)  compare another variant's result with the kept one
    ("time", n)                wall time of n back-to-back run() calls, GPU-synchronized
    ("exit",)

Replies are ("ok", value) or ("error", one-line message). Only the verifier starts this
module (``python -c`` with the package on sys.path), never user code.
"""

from __future__ import annotations

import gc
import importlib.util
import pickle
import random
import resource
import socket
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path

MIB = 1024 * 1024


class PairFailure(Exception):
    """An error in the pair's own code or shape, reported as one line."""


class Variant:
    def __init__(self, path: Path, device: str):
        self.path = path
        self.device = device
        self.module = None
        self.inputs = None
        self.result = None

    # -- loading ---------------------------------------------------------------
    def load_and_setup(self, size: int) -> dict:
        self.module = self._import()
        for name in ("setup", "run"):
            if not callable(getattr(self.module, name, None)):
                raise PairFailure(f"{self.path.name} defines no {name}() function")
        seed_everything()
        started = time.perf_counter()
        self.inputs = self._call_pair_code("setup", self.module.setup, size, self.device)
        self.synchronize()
        return {"setup_s": time.perf_counter() - started}

    def _import(self):
        sys.path.insert(0, str(self.path.parent))  # pairs may import a helper beside them
        spec = importlib.util.spec_from_file_location(f"aiperf_pair_{self.path.stem}", self.path)
        module = importlib.util.module_from_spec(spec)
        # Registered so process pools can pickle functions defined in the pair.
        sys.modules[spec.name] = module
        self._call_pair_code("import", spec.loader.exec_module, module)
        return module

    def _call_pair_code(self, phase: str, function, *args):
        try:
            return function(*args)
        except MemoryError:
            raise  # reported with the memory cap by main()
        except Exception as exc:
            raise PairFailure(f"{phase} raised {describe_exception(exc, self.path)}") from None

    # -- requests ----------------------------------------------------------------
    def first(self) -> dict:
        """First (warm-up) call, in a fresh process, with its peak memory growth."""
        gc.collect()
        self.synchronize()
        memory = MemoryProbe(self.device)
        started = time.perf_counter()
        self.result = self._call_pair_code("run", self.module.run, self.inputs)
        self.synchronize()
        elapsed = time.perf_counter() - started
        cuda_used = cuda_torch(self.device) is not None
        return {"time_s": elapsed, "cuda_used": cuda_used, **memory.peak_growth()}

    def result_bytes(self) -> bytes:
        try:
            return pickle.dumps(to_cpu(self.result), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise PairFailure(
                f"run() result cannot be pickled: {describe_exception(exc)}"
            ) from None

    def compare(self, expected_bytes: bytes, rtol: float, atol: float) -> str | None:
        from aiperf_lint.verify.equivalence import compare

        try:
            expected = pickle.loads(expected_bytes)
        except Exception as exc:
            raise PairFailure(
                f"cannot load before.py's result here: {describe_exception(exc)}"
            ) from None
        actual, self.result = to_cpu(self.result), None  # the kept result is no longer needed
        return compare(expected, actual, rtol, atol)

    def time(self, calls: int) -> float:
        run, inputs = self.module.run, self.inputs

        def run_calls() -> None:
            for _ in range(calls):
                run(inputs)
            self.synchronize()  # GPU work must be finished inside the timed region

        gc.collect()  # GC stays enabled while timing: realistic for allocating code
        self.synchronize()
        started = time.perf_counter()
        self._call_pair_code("run", run_calls)
        return time.perf_counter() - started

    def synchronize(self) -> None:
        torch = cuda_torch(self.device)
        if torch is not None:
            torch.cuda.synchronize()


class MemoryProbe:
    """Peak memory growth from now: VmHWM reset via clear_refs; CUDA allocator peak on GPU."""

    def __init__(self, device: str):
        self.device = device
        self.rss_reset = reset_peak_rss()
        self.rss_start_kib = read_status_kib("VmRSS")
        self.cuda_start = 0  # CUDA not initialized yet: its allocator stats start at zero
        torch = cuda_torch(device)
        if torch is not None:
            torch.cuda.reset_peak_memory_stats()
            self.cuda_start = torch.cuda.memory_allocated()

    def peak_growth(self) -> dict:
        growth: dict = {"peak_rss_mib": None, "peak_cuda_mib": None}
        if self.rss_reset and self.rss_start_kib is not None:
            peak = read_status_kib("VmHWM")
            growth["peak_rss_mib"] = max(0, peak - self.rss_start_kib) / 1024
        torch = cuda_torch(self.device)
        if torch is not None:
            growth["peak_cuda_mib"] = (torch.cuda.max_memory_allocated() - self.cuda_start) / MIB
        return growth


def cuda_torch(device: str):
    """torch, when this pair runs on CUDA and has started using it; else None.

    Pairs that never touch torch (pandas, NumPy) get no CUDA context and no syncs.
    """
    torch = sys.modules.get("torch")
    if device != "cuda" or torch is None or not torch.cuda.is_initialized():
        return None
    return torch


def reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def read_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def seed_everything(seed: int = 0) -> None:
    """Seed the RNGs the pair module imported; pairs also seed inside setup()."""
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def to_cpu(value):
    """Move tensors (also inside tuples/lists/dicts) to the CPU so any process can load them."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu()
    if type(value) in (list, tuple):  # exact types: a namedtuple would not rebuild this way
        return type(value)(to_cpu(item) for item in value)
    if type(value) is dict:
        return {key: to_cpu(item) for key, item in value.items()}
    return value


def describe_exception(exc: BaseException, pair_file: Path | None = None) -> str:
    """``ZeroDivisionError: division by zero (before.py:12 in run)``: one line."""
    message = str(exc).strip().splitlines()
    text = type(exc).__name__ + (f": {message[0]}" if message else "")
    if pair_file is not None:
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == pair_file
        ]
        if frames:
            text += f" ({pair_file.name}:{frames[-1].lineno} in {frames[-1].name})"
    return text


def limit_address_space(cap_mib: int) -> None:
    if cap_mib > 0:
        cap = cap_mib * MIB
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def serve(connection: Connection, variant: Variant) -> None:
    handlers = {
        "first": variant.first,
        "result": variant.result_bytes,
        "compare": variant.compare,
        "time": variant.time,
    }
    while True:
        command, *args = connection.recv()
        if command == "exit":
            return
        connection.send(("ok", handlers[command](*args)))


def main(argv: list[str] | None = None) -> int:
    fd, pair_file, size, device, cap = sys.argv[1:] if argv is None else argv
    path, cap_mib = Path(pair_file), int(cap)
    connection = Connection(socket.socket(fileno=int(fd)).detach())
    try:
        limit_address_space(cap_mib)
        variant = Variant(path, device)
        connection.send(("ok", variant.load_and_setup(int(size))))
        serve(connection, variant)
    except PairFailure as exc:
        connection.send(("error", str(exc)))
    except MemoryError:
        limit = f"exceeded the memory cap of {cap_mib} MiB" if cap_mib else "out of memory"
        connection.send(("error", f"MemoryError: {limit}"))
    except (EOFError, BrokenPipeError):
        return 0  # the verifier went away (e.g. it timed out another variant)
    except Exception as exc:  # anything else: still one line, with the pair's line if any
        connection.send(("error", describe_exception(exc, path)))
    finally:
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
