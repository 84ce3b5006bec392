"""`--fix` never loses a file: killed mid-run, run twice at once, or racing an
editor that changes the file between our read and our write."""

from __future__ import annotations

import ast
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiperf_lint import api

CALL = "scaler = torch.cuda.amp.GradScaler()"
FIXED_CALL = 'scaler = torch.amp.GradScaler("cuda")'
# Enough code per file that a run over the tree takes seconds, so a kill
# lands while files are being written.
FILLER = "".join(
    f"def helper_{i}(a, b):\n    return [a + b for _ in range(3)]\n\n\n" for i in range(80)
)


def source(index: int) -> str:
    filler = FILLER if index % 2 else ""  # mixed sizes: writes at varied moments
    return f'"""Module {index}."""\nimport torch\n\n{filler}{CALL}\nVALUE = {index}\n'


def fixed_source(index: int) -> str:
    return source(index).replace(CALL, FIXED_CALL)


def make_tree(root: Path, count: int) -> dict[Path, int]:
    files = {}
    for index in range(count):
        path = root / f"pkg{index % 4}" / f"mod_{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source(index))
        files[path] = index
    return files


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "aiperf_lint", *args, "--no-cache"]


def test_expected_fix_is_what_the_fixer_produces():
    assert api.fix_source(source(3)) == fixed_source(3)


def test_sigkill_mid_run_leaves_each_file_old_or_new(tmp_path):
    """SIGKILL the whole process group (workers included) at random moments
    after the first file was written; every file is exactly the old or the
    new content, never partial."""
    rng = random.Random(int(os.environ.get("AIPERF_KILL_SEED", "8")))
    killed_mid_run = 0
    for attempt in range(3):
        root = tmp_path / f"run{attempt}"
        files = make_tree(root, 60)
        proc = subprocess.Popen(
            cli("check", "--fix", "--quiet", "-j", "2", "."),
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_for_first_write(files, proc)
            time.sleep(rng.uniform(0, 0.4))
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)
        states = [_state(path, index) for path, index in files.items()]
        assert "partial" not in states, [p for p, s in zip(files, states) if s == "partial"]
        if proc.returncode == -signal.SIGKILL and "old" in states and "new" in states:
            killed_mid_run += 1
    assert killed_mid_run >= 1, "no kill landed mid-run; the tree is too small for this machine"


def _wait_for_first_write(files: dict[Path, int], proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(_state(path, index) == "new" for path, index in files.items()):
            return
        time.sleep(0.01)


def _state(path: Path, index: int) -> str:
    text = path.read_text()
    if text == source(index):
        return "old"
    if text == fixed_source(index):
        return "new"
    return "partial"


def test_two_concurrent_fix_runs_end_with_valid_files(tmp_path):
    files = make_tree(tmp_path, 12)
    runs = [
        subprocess.Popen(
            cli("check", "--fix", "--quiet", "-j", jobs, "."),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for jobs in ("1", "2")
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, stderr) in zip(runs, outputs):
        assert "Traceback" not in stderr
        assert run.returncode in (0, 2), stderr
        for line in stderr.splitlines():  # the only error allowed: the other run won
            assert line.endswith("file changed on disk while fixing; not written"), line
    for path, index in files.items():
        text = path.read_text()
        ast.parse(text)
        assert text == fixed_source(index), path
    assert not list(tmp_path.rglob("*.aiperf-tmp"))


# An editor saves the file after we read it and before we write: simulated
# deterministically by wrapping fileio.atomic_write inside the CLI process.
RACING_EDITOR = """
import sys
from pathlib import Path
from aiperf_lint import cli, fileio

real_write = fileio.atomic_write

def write_after_an_edit(path, data, expected_digest=None):
    if Path(path).name == "edited.py":
        with open(path, "a") as handle:
            handle.write("# saved by the editor meanwhile\\n")
    return real_write(path, data, expected_digest)

fileio.atomic_write = write_after_an_edit
sys.exit(cli.main(sys.argv[1:]))
"""


FILES = ["edited.py", "link.py"]


def test_file_changed_between_read_and_write_is_skipped(tmp_path):
    """...and the other files are fixed, permissions kept, symlinks left links."""
    (tmp_path / "edited.py").write_text(source(1))
    target = tmp_path / "data" / "real.py"
    target.parent.mkdir()
    target.write_text(source(2))
    target.chmod(0o751)
    (tmp_path / "link.py").symlink_to(target)
    proc = subprocess.run(
        [sys.executable, "-c", RACING_EDITOR, "check", "--fix", "--no-cache", "-j1", *FILES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: edited.py: file changed on disk while fixing; not written"
    )
    assert (tmp_path / "edited.py").read_text() == source(1) + "# saved by the editor meanwhile\n"
    assert (tmp_path / "link.py").is_symlink()
    assert target.read_text() == fixed_source(2)
    assert target.stat().st_mode & 0o777 == 0o751
    assert not list(tmp_path.rglob("*.aiperf-tmp"))
