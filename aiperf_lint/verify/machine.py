"""Machine facts for the evidence file, and CUDA detection without importing torch here."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys

LIBRARIES = ("numpy", "pandas", "torch", "matplotlib", "libcst")
TORCH_PROBE = """
import json, torch
cuda = torch.cuda.is_available()
print(json.dumps({"cuda": cuda, "device_name": torch.cuda.get_device_name(0) if cuda else None,
                  "cuda_version": torch.version.cuda}))
"""


def has_package(name: str) -> bool:
    """Installed? Looks the package up without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def probe_cuda(timeout_s: float = 180.0) -> dict:
    """Ask torch, in a throwaway process, whether it sees a GPU (keeps torch out of ours)."""
    if not has_package("torch"):
        return {
            "cuda": False,
            "device_name": None,
            "cuda_version": None,
            "reason": "torch is not installed",
        }
    try:
        done = subprocess.run(
            [sys.executable, "-c", TORCH_PROBE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {
            "cuda": False,
            "device_name": None,
            "cuda_version": None,
            "reason": f"torch probe failed: {exc}",
        }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info(device: str, device_name: str | None) -> dict:
    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": library_versions(),
        "device": device,
        "device_name": device_name if device == "cuda" else cpu_model(),
        # Other work on the machine widens the CIs; the evidence file should say so.
        "load_average": _load_average(),
    }


def _load_average() -> list[float] | None:
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None


def device_slug(device: str, device_name: str | None) -> str:
    """``cpu``, or the GPU's name as a file-name part: "NVIDIA H200" -> "nvidia-h200"."""
    if device != "cuda" or not device_name:
        return device
    return re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") or "cuda"


def total_memory_mib() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 0
