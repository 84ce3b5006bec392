"""AIP302 array-growth-in-loop."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.accumulation import collect_then_join_fix, find_accumulation
from aiperf_lint.rule import Invalid, Rule

_SPELLING = {"numpy": "np.{}", "pandas": "pd.{}"}


class ArrayGrowthInLoop(Rule):
    """
    ## What it does
    Finds NumPy arrays and pandas objects grown inside a loop by re-binding the
    same name to `np.append`, `np.concatenate`, `np.vstack`, `np.hstack`,
    `pd.concat` or `DataFrame._append` of itself and a new piece on every
    iteration.

    ## Why is this bad
    NumPy arrays and pandas frames cannot grow in place: every call allocates a
    new object and copies everything accumulated so far, so n iterations copy
    O(n^2) elements (`pd.concat` also re-aligns the index every time). Measured
    on a 2-core CPU (`../shared/notes/speedups-cpu.md`, pair 4): `np.append`
    of 10,000 scalars is about 40x slower than `list.append` + one `np.array`,
    and about 137x slower at 100,000.

    Not reported: loops that read the accumulated array again inside the loop
    (its value is needed every step), loops over a handful of literal items,
    and one join after the loop (the correct idiom).

    ## Example
    ```python
    scores = np.array([])
    for batch in batches:
        scores = np.append(scores, predict(batch))
    ```

    ## Use instead
    ```python
    scores_parts = [np.array([])]
    for batch in batches:
        scores_parts.append(predict(batch))
    scores = np.concatenate(scores_parts, axis=None)
    ```
    or pre-allocate with `np.empty(n)` when the final size is known. When every
    piece is a scalar, `np.array(pieces)` is faster still than
    `np.concatenate(..., axis=None)` (18 ms against 1.8 ms for 10,000 Python
    floats with `timeit` on the same loaded 2-core CPU), but it is only
    equivalent when all pieces have one shape, so the fix does not write it.

    ## Fix safety
    Unsafe, offered for the plain shape only: `acc = np.concatenate([acc, x], ...)`,
    `np.vstack`, `np.hstack`, `np.append(acc, x[, axis])` (spelled `np.append`),
    `pd.concat([acc, x], ...)` (with only `axis`, `ignore_index`, `join`,
    `sort`, `verify_integrity`, `copy`), directly in a `for`/`while` body
    without `else`, not inside a `with` block of the loop, with loop-invariant
    other arguments. The value `acc` holds before the loop stays the first
    list element, so dtype promotion and empty initialisers behave as before;
    `np.append` without `axis` flattens both operands, and
    `np.concatenate(parts, axis=None)` flattens every part the same way. What
    changes: the result is a fresh object even when the loop never runs, a
    shape error is raised after the loop instead of at the bad iteration, and
    with exotic mixed dtypes (e.g. int16, uint16 and float16 pieces) NumPy's
    pairwise promotion can differ from the one-shot one. `DataFrame._append`
    (a Series or dict piece becomes a row, which `pd.concat` would not do), the
    `None`-first idiom, prepending and attribute accumulators are reported
    without a fix.

    ## References
    - NumPy docs, `numpy.append` ("a copy of arr with values appended"):
      https://numpy.org/doc/stable/reference/generated/numpy.append.html
    - pandas docs, `pandas.concat` (notes on iteratively appending rows):
      https://pandas.pydata.org/docs/reference/api/pandas.concat.html
    - The PyTorch form is AIP107 (same detection).
    """

    code = "AIP302"
    name = "array-growth-in-loop"
    message = (
        "`{call}` re-binds `{target}` to itself plus a piece on every iteration "
        "(quadratic copying); append the pieces to a list and join once after the loop "
        "(or pre-allocate)"
    )
    fix_kind = "unsafe"
    triggers = (b"append", b"concat", b"stack")

    def visit_Assign(self, node: cst.Assign) -> None:
        acc = find_accumulation(self.ctx, node)
        if acc is None or acc.library not in _SPELLING:
            return
        if acc.function in {"append", "_append"} and acc.library == "pandas":
            call = f"{acc.target}.{acc.function}"
        else:
            call = _SPELLING[acc.library].format(acc.function)
        message = self.message.format(call=call, target=acc.target)
        self.report(acc.call, message, collect_then_join_fix(self.ctx, acc))


VALID = [
    # the correct idiom: collect, then one join after the loop
    """
import numpy as np
parts = []
for x in xs:
    parts.append(x ** 2)
arr = np.array(parts)
""",
    """
import pandas as pd
frames = [pd.read_csv(p) for p in paths]
df = pd.concat(frames, ignore_index=True)
""",
    # list.append is not array growth
    """
import numpy as np
out = []
for x in xs:
    out.append(np.sqrt(x))
""",
    # the grown array is read in the loop: needed every step
    """
import numpy as np
path = np.zeros((1, 2))
for step in steps:
    nxt = path[-1] + step
    path = np.vstack([path, nxt])
""",
    # joining different arrays each iteration
    """
import numpy as np
for a, b in pairs:
    both = np.concatenate([a, b])
    total += both.sum()
""",
    # a loop over a couple of literal items
    """
import pandas as pd
df = pd.DataFrame()
for split in ["train", "test"]:
    df = pd.concat([df, load(split)])
""",
    # `append` on something that is not a DataFrame
    """
import pandas as pd
class Log:
    def append(self, x):
        return self
log = Log()
for x in xs:
    log = log.append(x)
""",
    # torch growth belongs to AIP107
    """
import torch
acc = torch.empty(0)
for x in xs:
    acc = torch.cat([acc, x])
""",
    # the accumulator is reset inside the loop (no None test): per-iteration value
    """
import numpy as np
for row in rows:
    acc = np.zeros(3)
    acc = np.append(acc, row)
    emit(acc)
""",
]

INVALID = [
    Invalid(
        """
import numpy as np

def scores(values):
    out = np.array([])
    for v in values:
        out = np.append(out, v * 0.5)
    return out
""",
        fixed="""
import numpy as np

def scores(values):
    out = np.array([])
    out_parts = [out]
    for v in values:
        out_parts.append(v * 0.5)
    out = np.concatenate(out_parts, axis=None)
    return out
""",
        unsafe=True,
    ),
    # np.append with an axis; `import numpy` without alias
    Invalid(
        """
import numpy
rows = numpy.empty((0, 3))
for r in records:
    rows = numpy.append(rows, [r], axis=0)
""",
        fixed="""
import numpy
rows = numpy.empty((0, 3))
rows_parts = [rows]
for r in records:
    rows_parts.append([r])
rows = numpy.concatenate(rows_parts, axis=0)
""",
        unsafe=True,
    ),
    Invalid(
        """
import numpy as np
feats = np.zeros((0, 8))
for img in images:
    feats = np.vstack([feats, extract(img)])
""",
        fixed="""
import numpy as np
feats = np.zeros((0, 8))
feats_parts = [feats]
for img in images:
    feats_parts.append(extract(img))
feats = np.vstack(feats_parts)
""",
        unsafe=True,
    ),
    Invalid(
        """
import pandas as pd
df = pd.DataFrame()
for path in paths:
    part = pd.read_csv(path)
    df = pd.concat([df, part], ignore_index=True)
""",
        fixed="""
import pandas as pd
df = pd.DataFrame()
df_parts = [df]
for path in paths:
    part = pd.read_csv(path)
    df_parts.append(part)
df = pd.concat(df_parts, ignore_index=True)
""",
        unsafe=True,
    ),
    # concatenate with a tuple and a loop-invariant axis
    Invalid(
        """
from numpy import concatenate, zeros
acc = zeros(0)
for chunk in stream:
    acc = concatenate((acc, chunk), axis=0)
""",
        fixed="""
from numpy import concatenate, zeros
acc = zeros(0)
acc_parts = [acc]
for chunk in stream:
    acc_parts.append(chunk)
acc = concatenate(acc_parts, axis=0)
""",
        unsafe=True,
    ),
    # DataFrame._append / .append of rows: reported, no fix
    Invalid(
        """
import pandas as pd
df = pd.DataFrame(columns=["a", "b"])
for a, b in pairs:
    df = df._append({"a": a, "b": b}, ignore_index=True)
"""
    ),
    Invalid(
        """
import pandas as pd
def build(rows):
    df = pd.DataFrame()
    for r in rows:
        df = df.append(r, ignore_index=True)
    return df
"""
    ),
    # None-first idiom: reported, no fix
    Invalid(
        """
import numpy as np
all_preds = None
for batch in batches:
    preds = predict(batch)
    if all_preds is None:
        all_preds = preds
    else:
        all_preds = np.concatenate([all_preds, preds])
"""
    ),
    # hstack with a loop-variant axis argument: reported, no fix
    Invalid(
        """
import numpy as np
acc = np.zeros((2, 0))
for i, col in enumerate(cols):
    acc = np.concatenate([acc, col], axis=i % 2)
"""
    ),
]
