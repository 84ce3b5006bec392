"""Bad input, run through the real CLI (a subprocess) as a user would.

One tree holds every kind of bad file next to good ones; `check` and
`check --fix` run over it once each (module-scoped: starting the CLI is the
slow part). Every bad file must give exactly one clear one-line error (exit 2),
never a traceback, and every other file must still be checked and fixed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiperf_lint import engine

# AIP105 has a safe fix that touches only the call: `torch.cuda.amp.X()` ->
# `torch.amp.X("cuda")`. Every file below that should be fixed contains it.
CALL = "scaler = torch.cuda.amp.GradScaler()"
FIXED_CALL = 'scaler = torch.amp.GradScaler("cuda")'
GOOD = f"import torch\n{CALL}\n"
DEPTH = 1000


def run_cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """`aiperf-lint ...` in a fresh interpreter, cache off, colour off."""
    return subprocess.run(
        [sys.executable, "-m", "aiperf_lint", *args, "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=timeout,
    )


def error_lines(proc: subprocess.CompletedProcess, name: str) -> list[str]:
    return [
        line
        for line in proc.stderr.splitlines()
        if line.startswith(f"error: {name}:") or line.startswith(f"error: {name} ")
    ]


def one_error(proc: subprocess.CompletedProcess, name: str) -> str:
    lines = error_lines(proc, name)
    assert len(lines) == 1, f"{name}: expected one error line, got {lines}\n{proc.stderr}"
    return lines[0]


# ---------------------------------------------------------------- the tree

NOTEBOOKS = {
    "nb_bad_json.ipynb": (b'{"cells": [', "invalid JSON at line 1"),
    "nb_no_cells.ipynb": (b'{"metadata": {}, "nbformat": 4}', "no 'cells' list"),
    "nb_top_list.ipynb": (b"[1, 2]", "top level is not a JSON object"),
    "nb_cell_not_dict.ipynb": (b'{"cells": [42]}', "cell 1 has no cell_type"),
    "nb_int_source.ipynb": (
        b'{"cells": [{"cell_type": "code", "source": 7}]}',
        "cell 1 has a malformed 'source'",
    ),
    "nb_list_int_source.ipynb": (
        b'{"cells": [{"cell_type": "code", "source": ["import torch\\n", 3]}]}',
        "cell 1 has a malformed 'source'",
    ),
    "nb_not_utf8.ipynb": (b'{"cells": ["\xff"]}', "not UTF-8"),
    "nb_v3.ipynb": (b'{"worksheets": [], "nbformat": 3}', "nbformat 3"),
    "nb_empty.ipynb": (b"", "invalid JSON"),
}

# name -> (bytes, expected error fragment with position if any)
BAD_FILES = {
    "syntax.py": (
        b"import torch  # amp\nx = (\n",
        "syntax.py:2:5: SyntaxError: '(' was never closed",
    ),
    "py2.py": (b'import torch  # amp\nprint "x"\n', "py2.py:2:1: SyntaxError: Missing parentheses"),
    "tab_error.py": (
        b"import torch  # amp\nif x:\n\ty = 1\n        z = 2\n",
        "tab_error.py:4:1: SyntaxError: inconsistent use of tabs and spaces",
    ),
    "undecodable.py": (
        b'import torch  # amp\ns = "\xff\xfe"\n',
        "undecodable.py:2:6: cannot decode as utf-8: invalid start byte",
    ),
    "nul.py": (b"import torch  # amp\x00\n", "nul.py: file contains NUL bytes"),
    "bad_cookie.py": (b"# coding: klingon\nimport torch  # amp\n", "unknown encoding: klingon"),
    "deep_parens.py": (
        f"import torch  # amp\nx = {'(' * DEPTH}1{')' * DEPTH}\n".encode(),
        "expression nesting too deep to analyse",
    ),
    "deep_lists.py": (
        f"import torch  # amp\nx = {'[' * DEPTH}{']' * DEPTH}\n".encode(),
        "expression nesting too deep to analyse",
    ),
    "deep_not.py": (
        f"import torch  # amp\nx = {'not ' * DEPTH}y\n".encode(),
        "deep_not.py:2:1: prefix chain too long to analyse",
    ),
    "deep_unary_minus.py": (
        f"import torch  # amp\nx = {'-' * DEPTH}y\n".encode(),
        "expression nesting too deep to analyse",
    ),
    "deep_attributes.py": (
        f"import torch  # amp\nx = y{'.a' * DEPTH}\n".encode(),
        "deep_attributes.py:2:1: call/attribute/subscript chain too long to analyse",
    ),
    "deep_subscripts.py": (
        f"import torch  # amp\nx = y{'[0]' * DEPTH}\n".encode(),
        "call/attribute/subscript chain too long to analyse",
    ),
    "deep_ternary.py": (
        f"import torch  # amp\nx = {'a if b else ' * DEPTH}c\n".encode(),
        "conditional expression chain too long to analyse",
    ),
    "deep_operators.py": (
        f"import torch  # amp\nx = 1{' + 1' * DEPTH}\n".encode(),
        "operator chain too long to analyse",
    ),
    # CPython itself stops at 100 indentation levels: reported as Python does.
    "deep_ifs.py": (
        (
            "import torch  # amp\n"
            + "".join(" " * i + "if x:\n" for i in range(101))
            + " " * 101
            + "pass\n"
        ).encode(),
        "deep_ifs.py:102:1: SyntaxError: too many levels of indentation",
    ),
    **NOTEBOOKS,
}

# name -> (original bytes, bytes after --fix): encodings, BOM and line endings kept.
FIXABLE = {
    "good.py": (GOOD.encode(), f"import torch\n{FIXED_CALL}\n".encode()),
    "bom_crlf.py": (
        f"\ufeffimport torch\r\n{CALL}\r\n# caf\u00e9\n".encode(),
        f"\ufeffimport torch\r\n{FIXED_CALL}\r\n# caf\u00e9\n".encode(),
    ),
    "latin1.py": (
        f'# -*- coding: latin-1 -*-\nimport torch\ns = "caf\u00e9"\n{CALL}\n'.encode("latin-1"),
        f'# -*- coding: latin-1 -*-\nimport torch\ns = "caf\u00e9"\n{FIXED_CALL}\n'.encode(
            "latin-1"
        ),
    ),
    "crlf.py": (
        f"import torch\r\n{CALL}\r\n".encode(),
        f"import torch\r\n{FIXED_CALL}\r\n".encode(),
    ),
    "mixed_endings.py": (
        f"import torch\r\nx = 1\n{CALL}\r\ny = 2\nz = 3\r\n".encode(),
        f"import torch\r\nx = 1\n{FIXED_CALL}\r\ny = 2\nz = 3\r\n".encode(),
    ),
    "tabs.py": (
        f"import torch\nif x:\n\t{CALL}\n\tif y:\n\t\tpass\n".encode(),
        f"import torch\nif x:\n\t{FIXED_CALL}\n\tif y:\n\t\tpass\n".encode(),
    ),
    "no_final_newline.py": (
        f"import torch\n{CALL}".encode(),
        f"import torch\n{FIXED_CALL}".encode(),
    ),
    "form_feed.py": (
        f"import torch\n\x0c\n{CALL}\n".encode(),
        f"import torch\n\x0c\n{FIXED_CALL}\n".encode(),
    ),
    "dir_named.py/inner.py": (GOOD.encode(), f"import torch\n{FIXED_CALL}\n".encode()),
    # 98 nested blocks: as deep as CPython allows (100 indentation levels).
    "deep_ifs_ok.py": tuple(
        (
            "import torch\n"
            + "".join(" " * i + "if x:\n" for i in range(98))
            + " " * 98
            + call
            + "\n"
        ).encode()
        for call in (CALL, FIXED_CALL)
    ),
}


def _notebook(call: str) -> bytes:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["import torch\n", call]}
    document = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return b"\xef\xbb\xbf" + json.dumps(document, indent=1).encode() + b"\n"


FIXABLE["bom.ipynb"] = (_notebook(CALL), _notebook(FIXED_CALL))

# Files that are fine and produce nothing.
QUIET_FILES = {
    "empty.py": b"",
    "bom_only.py": b"\xef\xbb\xbf",
    "comments_only.py": b"# torch.cuda.amp is mentioned only in a comment\n",
    # LibCST drops a trailing lone "\r": reported, but not fixed (a fix would
    # rewrite that byte too).
}
CR_ONLY = f"import torch\r{CALL}\ry = 1\r".encode()


def build_tree(root: Path) -> Path:
    for name, (data, _) in {**BAD_FILES, **FIXABLE}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for name, data in QUIET_FILES.items():
        (root / name).write_bytes(data)
    (root / "cr_only.py").write_bytes(CR_ONLY)
    (root / "broken_link.py").symlink_to(root / "nowhere.py")
    (root / "loop_a.py").symlink_to(root / "loop_b.py")
    (root / "loop_b.py").symlink_to(root / "loop_a.py")
    os.mkfifo(root / "fifo.py")  # reading it would block forever
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build_tree(tmp_path_factory.mktemp("bad_input"))


@pytest.fixture(scope="module")
def checked(tree) -> subprocess.CompletedProcess:
    return run_cli("check", ".", "missing.py", "--format", "json", cwd=tree)


@pytest.fixture(scope="module")
def fixed(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = build_tree(tmp_path_factory.mktemp("bad_input_fix"))
    return root, run_cli("check", "--fix", ".", cwd=root)


def test_run_survives_every_bad_file(checked):
    assert checked.returncode == 2, checked.stderr
    assert "Traceback" not in checked.stderr
    assert "RecursionError" not in checked.stderr
    for line in checked.stderr.splitlines():
        assert line.startswith("error: "), line


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_gives_one_clear_line(checked, name):
    _, expected = BAD_FILES[name]
    assert expected in one_error(checked, name)


def test_good_files_are_still_checked(checked):
    reported = {(f["path"], f["code"]) for f in json.loads(checked.stdout)}
    for name in FIXABLE:
        assert (name, "AIP105") in reported, name
    assert ("cr_only.py", "AIP105") in reported
    for name in QUIET_FILES:
        assert not error_lines(checked, name)
        assert all(path != name for path, _ in reported)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken_link.py", "broken symbolic link"),
        ("loop_a.py", "symbolic link loop"),
        ("loop_b.py", "symbolic link loop"),
        ("missing.py", "no such file or directory"),
        ("fifo.py", "cannot read file: not a regular file"),
    ],
)
def test_paths_that_cannot_be_read(checked, name, message):
    assert one_error(checked, name).endswith(message)


@pytest.mark.parametrize("name", sorted(FIXABLE))
def test_fix_keeps_encoding_bom_and_line_endings(fixed, name):
    root, proc = fixed
    assert "Traceback" not in proc.stderr
    assert (root / name).read_bytes() == FIXABLE[name][1]


def test_fix_leaves_bad_and_unfixable_files_byte_identical(fixed):
    root, proc = fixed
    assert proc.returncode == 2
    for name, (data, _) in BAD_FILES.items():
        assert (root / name).read_bytes() == data, name
    assert (root / "cr_only.py").read_bytes() == CR_ONLY
    assert "fix unavailable" in proc.stdout
    leftovers = [p.name for p in root.rglob("*.aiperf-tmp")]
    assert not leftovers


def test_unreadable_file_is_reported_and_others_checked(tmp_path):
    """A real EACCES. We run as root in the dev container, where mode 000 does
    not stop reads, so the CLI runs with the DAC-override capabilities dropped
    (setpriv); as a normal user chmod 000 is enough."""
    (tmp_path / "secret.py").write_text(GOOD)
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "secret.py").chmod(0)
    command = [sys.executable, "-m", "aiperf_lint", "check", ".", "--no-cache"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2
    assert "error: secret.py: cannot read file: Permission denied" in proc.stderr
    assert "good.py:2:10: AIP105" in proc.stdout
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------- big files


def _big_source(with_trigger: bool, size: int = 10_000_000) -> bytes:
    block = "def f{i}(a, b):\n    total = a + b\n    return total\n\n\n"
    if with_trigger:
        block = "import torch\n" + block.replace(
            "return total", "return total, " + CALL.split(" = ")[1]
        )
    out, length, i = [], 0, 0
    while length < size:
        chunk = block.format(i=i)
        out.append(chunk)
        length += len(chunk)
        i += 1
    return "".join(out).encode()


def test_ten_megabyte_files_finish_quickly(tmp_path):
    """With triggers: refused by the size guard (parsing 10 MB takes LibCST
    minutes and gigabytes); without: never parsed. Both well under a minute."""
    (tmp_path / "big_trigger.py").write_bytes(_big_source(True))
    (tmp_path / "big_plain.py").write_bytes(_big_source(False))
    (tmp_path / "good.py").write_text(GOOD)
    assert not engine.active_rules(_big_source(False, 10_000), [r for r in _default_rules()])
    started = time.monotonic()
    proc = run_cli("check", "--fix", ".", cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"took {elapsed:.1f} s"
    assert one_error(proc, "big_trigger.py").endswith(
        "file too large to analyse (10.0 MB; limit 3 MB)"
    )
    assert not error_lines(proc, "big_plain.py")
    assert (tmp_path / "good.py").read_text() == f"import torch\n{FIXED_CALL}\n"
    assert (tmp_path / "big_trigger.py").read_bytes() == _big_source(True)


def _default_rules():
    from aiperf_lint import config, runner

    return runner.rules_for(config.Settings(root=Path("/")).enabled_codes())


# ---------------------------------------------------------------- configuration
# (tests/test_cli.py covers unknown keys and codes and invalid TOML; the first
# two cases here used to end in a traceback)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (b'[tool.aiperf-lint]\nselect = "\xff"\n', "invalid TOML: not UTF-8"),
        (b"tool = 1\n", "[tool] must be a table"),
        (b"[tool]\naiperf-lint = 1\n", "[tool.aiperf-lint] must be a table"),
    ],
)
def test_bad_config_is_one_line_exit_2(tmp_path, config, message):
    (tmp_path / "pyproject.toml").write_bytes(config)
    (tmp_path / "good.py").write_text(GOOD)
    proc = run_cli("check", ".", cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
