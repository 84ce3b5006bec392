"""Jupyter notebooks: code cells linted and fixed, IPython syntax skipped, the file kept intact."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from aiperf_lint import cli, notebook

LOOP = [
    "for i, row in df.iterrows():\n",
    '    df.loc[i, "total"] = row["price"] * row["qty"]\n',
]
FIXED_LOOP = ['df["total"] = df["price"] * df["qty"]\n']


def _code(source, outputs=(), count=None, **metadata) -> dict:
    return {
        "cell_type": "code",
        "execution_count": count,
        "id": f"c{abs(hash(str(source))) % 10**6}",
        "metadata": metadata,
        "outputs": list(outputs),
        "source": source,
    }


def _markdown(text: str) -> dict:
    return {"cell_type": "markdown", "id": "md", "metadata": {}, "source": [text]}


def _notebook(*cells, language="python") -> dict:
    return {
        "cells": list(cells),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": language, "name": "python3"},
            "language_info": {"name": language, "version": "3.11.7"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _jupyter_text(document: dict) -> str:
    """What Jupyter (nbformat) writes."""
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


STREAM = {"name": "stdout", "output_type": "stream", "text": ["héllo ✓\n"]}
IMAGE = {
    "data": {"image/png": "iVBORw0KGgo=\n", "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
    "metadata": {"needs_background": "light"},
    "output_type": "display_data",
}


def _sample() -> dict:
    return _notebook(
        _markdown("# Sales report ✓"),
        _code(
            [
                "%matplotlib inline\n",
                "import pandas as pd\n",
                "!pip install -q pandas\n",
                "df = pd.read_csv('s.csv')",
            ],
            count=1,
        ),
        _code(
            ["df.head?\n", "files = !ls\n", *LOOP, "%time total = df['total'].sum()"],
            [STREAM, IMAGE],
            2,
            tags=["slow"],
        ),
        _code(
            "%%writefile helper.py\nfor i, row in df.iterrows():\n    df.loc[i, 'x'] = row['a'] * 2\n",
            count=3,
        ),
        _code("%%time\nout = [r.a * r.b for r in df.itertuples()]\n", count=4),
    )


def _write(tmp_path: Path, document: dict, text: str | None = None, name: str = "nb.ipynb") -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else _jupyter_text(document), encoding="utf-8")
    return path


def _run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([*args, "--jobs", "1"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_output_names_cell_and_line(tmp_path, capsys):
    path = _write(tmp_path, _sample())
    code, out, err = _run(capsys, "check", "--quiet", str(path))
    assert code == 1, err
    lines = out.splitlines()
    # the second code cell; the loop is its 3rd line (after `df.head?` and `files = !ls`)
    assert f"{path}:cell 2:line 3:col 15: AIP401 [*] " in out
    assert any(line.startswith(f"{path}:cell 4:line 2:") and " AIP401 " in line for line in lines)
    # the %%writefile cell is not Python and is never reported
    assert not any(":cell 3:" in line for line in lines)


def test_json_output_carries_the_cell_index(tmp_path, capsys):
    path = _write(tmp_path, _sample())
    code, out, _ = _run(capsys, "check", "--format", "json", str(path))
    findings = json.loads(out)
    assert code == 1
    iterrows = next(f for f in findings if f["code"] == "AIP401" and f["cell"] == 1)
    assert (iterrows["line"], iterrows["column"]) == (3, 15)
    assert {f["cell"] for f in findings} == {1, 3}


def test_fix_rewrites_only_the_changed_cell_and_keeps_layout(tmp_path, capsys):
    document = _sample()
    path = _write(tmp_path, document)
    code, _, err = _run(capsys, "check", "--fix", "--quiet", str(path))
    assert err == ""
    expected = copy.deepcopy(document)
    expected["cells"][2]["source"] = [
        "df.head?\n",
        "files = !ls\n",
        *FIXED_LOOP,
        "%time total = df['total'].sum()",
    ]
    # byte for byte what Jupyter would write: outputs, metadata, ids, unicode and indent kept
    assert path.read_text(encoding="utf-8") == _jupyter_text(expected)
    assert code == 1  # the itertuples comprehension remains (no fix for it)


@pytest.mark.parametrize(
    ("indent", "ensure_ascii", "newline"),
    [(2, False, ""), (4, True, "\n"), (None, False, "")],
)
def test_fix_keeps_other_json_layouts(tmp_path, capsys, indent, ensure_ascii, newline):
    document = _notebook(_code(["import pandas as pd\n", "df = pd.DataFrame()\n", *LOOP], [STREAM]))
    text = json.dumps(document, indent=indent, ensure_ascii=ensure_ascii) + newline
    path = _write(tmp_path, document, text)
    _run(capsys, "check", "--fix", str(path))
    expected = copy.deepcopy(document)
    expected["cells"][0]["source"] = ["import pandas as pd\n", "df = pd.DataFrame()\n", *FIXED_LOOP]
    assert (
        path.read_text(encoding="utf-8")
        == json.dumps(expected, indent=indent, ensure_ascii=ensure_ascii) + newline
    )


def test_string_sources_stay_strings(tmp_path, capsys):
    document = _notebook(_code("import pandas as pd\ndf = pd.DataFrame()\n" + "".join(LOOP)))
    path = _write(tmp_path, document)
    _run(capsys, "check", "--fix", str(path))
    source = json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"]
    assert source == "import pandas as pd\ndf = pd.DataFrame()\n" + "".join(FIXED_LOOP)


def test_diff_shows_the_notebook_change_and_writes_nothing(tmp_path, capsys):
    path = _write(tmp_path, _sample())
    before = path.read_bytes()
    code, out, _ = _run(capsys, "check", "--diff", str(path))
    assert code == 1
    assert '-    "for i, row in df.iterrows():\\n",' in out
    assert '+    "df[\\"total\\"] = df[\\"price\\"] * df[\\"qty\\"]\\n",' in out
    assert path.read_bytes() == before


def test_fixed_notebook_is_idempotent(tmp_path, capsys):
    path = _write(tmp_path, _sample())
    _run(capsys, "check", "--fix", str(path))
    once = path.read_bytes()
    _run(capsys, "check", "--fix", str(path))
    assert path.read_bytes() == once


def test_directories_include_notebooks(tmp_path, capsys):
    _write(tmp_path, _sample(), name="analysis.ipynb")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    _write(tmp_path / ".ipynb_checkpoints", _sample(), name="analysis-checkpoint.ipynb")
    code, out, _ = _run(capsys, "check", "--format", "json", str(tmp_path))
    assert code == 1
    assert {Path(f["path"]).name for f in json.loads(out)} == {"analysis.ipynb"}


def test_noqa_in_a_cell(tmp_path, capsys):
    loop = [LOOP[0].rstrip("\n") + "  # noqa: AIP401\n", LOOP[1]]
    document = _notebook(_code(["import pandas as pd\n", "df = pd.DataFrame()\n"]), _code(loop))
    code, out, _ = _run(
        capsys, "check", "--format", "json", "--select", "AIP401", str(_write(tmp_path, document))
    )
    assert (code, json.loads(out)) == (0, [])


def test_other_kernels_are_skipped(tmp_path, capsys):
    document = _notebook(
        _code(["import pandas as pd\n", "df = pd.DataFrame()\n", *LOOP]), language="R"
    )
    code, out, err = _run(capsys, "check", "--quiet", str(_write(tmp_path, document)))
    assert (code, out, err) == (0, "", "")


def test_a_broken_cell_is_reported_and_the_rest_still_checked(tmp_path, capsys):
    document = _notebook(
        _code(["import pandas as pd\n", "df = pd.DataFrame()\n"]),
        _code(["x = (1,\n"]),
        _code(LOOP),
    )
    path = _write(tmp_path, document)
    code, out, err = _run(capsys, "check", "--quiet", str(path))
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {path}: cell 2:line 1: SyntaxError: '(' was never closed"
    ]
    assert f"{path}:cell 3:line 1:col 15: AIP401" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"cells": [', "not a valid notebook: invalid JSON at line 1 column 12"),
        ("[1, 2]", "not a valid notebook: the top level is not a JSON object"),
        ('{"metadata": {}}', "not a valid notebook: no 'cells' list"),
        ('{"worksheets": [], "nbformat": 3}', "nbformat 3 notebooks are not supported"),
        ('{"cells": [{"source": "x"}]}', "not a valid notebook: cell 1 has no cell_type"),
        (
            '{"cells": [{"cell_type": "code", "source": 3}]}',
            "not a valid notebook: cell 1 has a malformed 'source'",
        ),
        (b"\xff\xfe{}", "not a valid notebook: not UTF-8"),
    ],
)
def test_malformed_notebooks_give_one_line_errors(tmp_path, capsys, text, message):
    path = tmp_path / "bad.ipynb"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    code, _, err = _run(capsys, "check", str(path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {path}: {message}")
    assert "Traceback" not in err


# ---------------------------------------------------------------- IPython syntax


@pytest.mark.parametrize(
    ("source", "masked"),
    [
        ("%matplotlib inline\nx = 1\n", {0}),
        ("!pip install x\n", {0}),
        ("files = !ls\nres = %timeit -o f()\n", {0, 1}),
        ("df.head?\nnp.sum??\n?np.mean\n", {0, 1, 2}),
        ("for f in files:\n    !echo {f}\n", {1}),
        ("!echo a \\\n  b\nx = 1\n", {0, 1}),
        # Python, not IPython: a continuation line starting with %, a % or ! inside strings
        ("x = (a\n     % b)\n", set()),
        ('s = """\n%not a magic\n!nor this\n"""\n', set()),
        ("x = 1  # why?\ny = a != b\nz %= 3\n", set()),
    ],
)
def test_ipython_lines_are_masked_and_python_kept(source, masked):
    assert notebook._ipython_lines(source.splitlines()) == masked


def test_masking_keeps_line_numbers_and_parses():
    cell = notebook.Cell(0, 0, "%time x = 1\nfor i in y:\n    !echo {i}\nz = 2")
    notebook.mask(cell, 0)
    lines = cell.text.splitlines()
    assert len(lines) == 4 and lines[1] == "for i in y:" and lines[3] == "z = 2"
    compile(cell.text, "<cell>", "exec")


def test_fixes_that_would_drop_an_ipython_line_are_refused():
    cells = [notebook.Cell(0, 0, "!ls\nx = 1\n")]
    notebook.mask(cells[0], 0)
    assert notebook.split(cells[0].text, cells) == {0: "!ls\nx = 1\n"}
    assert notebook.split("x = 1\n", cells) is None
