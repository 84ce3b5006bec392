"""Behaviour of the AIP107/AIP302 (accumulation), AIP301, AIP303 and AIP601 fixes.

The per-rule VALID/INVALID examples (tests/test_rules.py) check what is reported
and the exact fixed text; here the original and the fixed code are *executed*
on real data and must compute the same thing, including the initialiser shapes
that make naive rewrites wrong (empty 1-D tensors joined with 2-D pieces, dtype
promotion from the initial value, loops that never run).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from aiperf_lint import api


def _fix(source: str, code: str) -> str:
    source = textwrap.dedent(source)
    fixed = api.fix_source(source, select=[code], unsafe=True)
    assert fixed != source, f"{code} offered no fix"
    assert not api.check_source(fixed, select=[code])
    return fixed


def _run(source: str, **inputs):
    namespace = dict(inputs)
    exec(compile(textwrap.dedent(source), "<snippet>", "exec"), namespace)
    return namespace["result"]


def _same(before, after) -> None:
    assert type(before) is type(after)
    if isinstance(before, torch.Tensor):
        assert before.dtype == after.dtype and before.shape == after.shape
        assert torch.equal(before, after)
    elif isinstance(before, np.ndarray):
        assert before.dtype == after.dtype and before.shape == after.shape
        assert np.array_equal(before, after)
    elif isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(before, after)
    else:
        assert before == after


TORCH_INITS = [
    "torch.empty(0)",  # legacy 1-D empty: skipped by cat, but promotes dtype
    "torch.empty(0, 4)",
    "torch.ones(2, 4, dtype=torch.float64)",
    "torch.zeros(0, dtype=torch.int64)",
]
TORCH_PIECES = [
    "torch.full((3, 4), float(i), dtype=torch.float16)",
    "torch.arange(4, dtype=torch.float32).reshape(1, 4) * i",
]


@pytest.mark.parametrize("init", TORCH_INITS)
@pytest.mark.parametrize("piece", TORCH_PIECES)
@pytest.mark.parametrize("n", [0, 1, 5])
def test_torch_cat_fix_computes_the_same_tensor(init, piece, n):
    source = f"""
    import torch
    acc = {init}
    for i in range(n):
        acc = torch.cat([acc, {piece}], dim=0)
    result = acc
    """
    fixed = _fix(source, "AIP107")
    try:
        before = _run(source, n=n)
    except RuntimeError:  # an init the original cannot join: the fixed code fails too
        with pytest.raises(RuntimeError):
            _run(fixed, n=n)
        return
    _same(before, _run(fixed, n=n))


NUMPY_CASES = [
    # (initialiser, statement in the loop)
    ("np.array([])", "acc = np.append(acc, i * 0.5)"),
    ("[]", "acc = np.append(acc, i)"),  # list init: np.append makes float64
    ("np.zeros(2, dtype=np.int32)", "acc = np.append(acc, np.array([i, i + 1]))"),
    ("np.empty((0, 3))", "acc = np.append(acc, [[i, i, i]], axis=0)"),
    ("np.zeros((1, 2))", "acc = np.vstack([acc, [i, -i]])"),
    ("np.zeros(0, dtype=np.int64)", "acc = np.hstack((acc, np.arange(i)))"),
    ("np.zeros((2, 0))", "acc = np.concatenate([acc, np.full((2, 1), i)], axis=1)"),
]


@pytest.mark.parametrize(("init", "statement"), NUMPY_CASES)
@pytest.mark.parametrize("n", [0, 1, 6])
def test_numpy_growth_fix_computes_the_same_array(init, statement, n):
    source = f"""
    import numpy as np
    acc = {init}
    for i in range(n):
        {statement}
    result = np.asarray(acc)
    """
    _same(_run(source, n=n), _run(_fix(source, "AIP302"), n=n))


@pytest.mark.parametrize("n", [0, 3])
@pytest.mark.parametrize("init", ["pd.DataFrame()", 'pd.DataFrame({"a": [0], "b": ["x"]})'])
def test_pandas_concat_fix_computes_the_same_frame(init, n):
    source = f"""
    import pandas as pd
    df = {init}
    for i in range(n):
        part = pd.DataFrame({{"a": [i, i + 1], "b": ["p", "q"]}})
        df = pd.concat([df, part], ignore_index=True)
    result = df
    """
    _same(_run(source, n=n), _run(_fix(source, "AIP302"), n=n))


REPORT_ONLY = [
    (
        "AIP107",
        """
        import torch
        acc = None
        for x in xs:
            acc = x if acc is None else torch.cat([acc, x])
        """,
    ),
    (
        "AIP107",
        """
        import torch
        acc = torch.zeros(0)
        for x in xs:
            acc = torch.stack([acc, x])
        """,
    ),
    (
        "AIP107",
        """
        import torch
        acc = torch.zeros(0)
        for x in xs:
            with torch.no_grad():
                acc = torch.cat([acc, x])
        """,
    ),
    (
        "AIP107",
        """
        import torch
        acc = torch.zeros(0)
        for x in xs:
            acc = torch.cat([acc, x], out=buf)
        """,
    ),
    (
        "AIP302",
        """
        import pandas as pd
        df = pd.DataFrame()
        for row in rows:
            df = df._append(row, ignore_index=True)
        """,
    ),
    (
        "AIP302",
        """
        import pandas as pd
        df = pd.DataFrame()
        for key, part in parts:
            df = pd.concat([df, part], keys=[key])
        """,
    ),
    (
        "AIP302",
        """
        from numpy import append
        acc = []
        for x in xs:
            acc = append(acc, x)
        """,
    ),
    (
        "AIP302",
        """
        import numpy as np
        acc = np.zeros(0)
        for x in xs:
            acc = np.concatenate([acc, x])
        else:
            print("done")
        """,
    ),
    (
        "AIP303",
        """
        words = list(load())
        for w in queries:
            pos = words.index(w)
        """,
    ),
    (
        "AIP601",
        """
        with open("f.txt") as f:
            for line in f.read().splitlines():
                print(line)
        """,
    ),
    (
        "AIP601",
        """
        with open("f.txt") as f:
            for line in f.readlines():
                print(line, f.tell())
        """,
    ),
]


@pytest.mark.parametrize(("code", "source"), REPORT_ONLY)
def test_report_only_shapes_offer_no_fix(code, source):
    source = textwrap.dedent(source)
    findings = api.check_source(source, select=[code])
    assert [f.code for f in findings] == [code]
    assert findings[0].edits == []
    assert api.fix_source(source, select=[code], unsafe=True) == source


def test_list_membership_fix_counts_the_same_hits():
    source = """
    def count(needles, known):
        haystack = list(known)
        hits = 0
        for n in needles:
            if n in haystack and n not in haystack[:3]:
                hits += 1
        return hits
    result = count(needles, known)
    """
    inputs = {"needles": [1, 2, 3, 7, 7, 11, 1.0], "known": [7, 1, 5, 11, 2]}
    assert _run(source, **inputs) == _run(_fix(source, "AIP303"), **inputs) == 2


def test_list_math_fix_gives_the_same_values():
    source = """
    import numpy as np
    arr = np.linspace(-3, 3, 101)
    squares = [2.0 * x ** 2 - x / 4 for x in arr]
    result = np.asarray(squares)
    """
    before, after = _run(source), _run(_fix(source, "AIP301"))
    assert np.allclose(before, after, rtol=1e-15, atol=0)


def test_readlines_fix_reads_the_same_lines(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"first\nsecond\r\nthird without newline")
    source = """
    seen = []
    with open(path, newline="") as f:
        lines = f.readlines()
        for line in lines:
            seen.append(line)
    for line in open(path).readlines():
        seen.append(line)
    result = seen
    """
    fixed = textwrap.dedent(source)
    fixed = api.fix_source(fixed, select=["AIP601"])
    assert "readlines" not in fixed
    assert _run(source, path=str(path)) == _run(fixed, path=str(path))


def test_opt_in_rule_is_off_by_default():
    source = 'import pandas as pd\ndf = pd.read_csv("x.csv")\nprint(df.mean())\n'
    assert [f.code for f in api.check_source(source, select=["AIP404"])] == ["AIP404"]
    assert "AIP404" not in {f.code for f in api.check_source(source)}
