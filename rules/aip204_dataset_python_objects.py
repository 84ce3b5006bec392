"""AIP204 dataset-python-objects."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.dataloaders import class_methods
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import (
    DATASET,
    ITERABLE_DATASET,
    ClassInfo,
    _unwrap_iterable,
    call_name,
    dotted_name,
    keyword_arg,
    names_in,
    positional_args,
)

# Loaders whose result is a tree of Python objects (records, dicts, lists).
_OBJECT_LOADERS = frozenset(
    {
        "json.load",
        "json.loads",
        "orjson.loads",
        "ujson.load",
        "ujson.loads",
        "pickle.load",
        "pickle.loads",
        "yaml.load",
        "yaml.safe_load",
        "joblib.load",
    }
)


class DatasetPythonObjects(Rule):
    """
    ## What it does
    Finds Datasets that keep their samples as Python objects that every worker ends up copying.
    That is: a `Dataset` subclass holding a Python list or dict of Python
    objects (records from `json.load`/`pickle.load`, a list of dicts,
    `DataFrame.to_dict("records")`, `list(csv.DictReader(...))`) in an attribute
    that `__getitem__` indexes per item (or `__iter__` iterates). Off by default.

    ## Why is this bad
    DataLoader workers are forked copies of the main process that share its
    memory pages copy-on-write. Reading a Python object writes its reference
    count, so every worker that touches a record copies the page holding it:
    over an epoch each worker ends up with its own copy of the whole list, and
    memory grows with `num_workers` (PyTorch issue #13246). A NumPy array, an
    Arrow table or pandas columns are a few large buffers without per-element
    reference counts: workers read them without copying. They also take far
    less memory than a list of dicts in the main process.

    Only matters with `num_workers > 0`. Small lists (class names, a config
    dict) are not per-item reads and are not reported: the attribute must be
    indexed by the item index in `__getitem__`, or iterated in `__iter__`.

    ## Example
    ```python
    class Records(Dataset):
        def __init__(self, path):
            with open(path) as f:
                self.records = json.load(f)

        def __getitem__(self, i):
            r = self.records[i]
            return r["x"], r["y"]
    ```

    ## Use instead
    ```python
    class Records(Dataset):
        def __init__(self, path):
            with open(path) as f:
                records = json.load(f)
            self.x = np.array([r["x"] for r in records], dtype=np.float32)
            self.y = np.array([r["y"] for r in records], dtype=np.int64)

        def __getitem__(self, i):
            return self.x[i], self.y[i]
    ```

    ## Fix safety
    No fix: the right columnar layout depends on the records.

    ## References
    - PyTorch issue #13246, "DataLoader num_workers > 0 causes CPU memory from parent process to be replicated in all worker processes": https://github.com/pytorch/pytorch/issues/13246
    - PyTorch `Dataset` documentation: https://pytorch.org/docs/stable/data.html#dataset-types
    - No ruff rule covers this.
    """

    code = "AIP204"
    name = "dataset-python-objects"
    message = (
        "Dataset keeps `self.{attr}` as Python objects read per item: with `num_workers > 0` "
        "every worker copies them (refcount writes), so memory grows per worker; store "
        "NumPy arrays, Arrow tables or pandas columns instead"
    )
    default_enabled = False
    fix_kind = "none"
    triggers = (b"Dataset",)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._reads: dict[str, set[str]] = {}
        self._reported: set[tuple[str, str]] = set()

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not _holds_records(self.ctx, node.value):
            return
        self._candidate(node.targets[0].target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and _holds_records(self.ctx, node.value):
            self._candidate(node.target, node.value)

    def visit_Call(self, node: cst.Call) -> None:
        """`self.samples.append({...})`: a list of dicts built item by item."""
        if call_name(node) != "append" or not isinstance(node.func, cst.Attribute):
            return
        args = positional_args(node)
        if len(args) == 1 and _is_record(self.ctx, args[0].value):
            self._candidate(node.func.value, node)

    def _candidate(self, target: cst.BaseExpression, where: cst.CSTNode) -> None:
        dotted = dotted_name(target)
        if dotted is None or not dotted.startswith("self.") or dotted.count(".") != 1:
            return
        cls = self._dataset_class()
        attr = dotted.split(".")[1]
        if cls is None or (cls.name, attr) in self._reported:
            return
        if attr in self._item_reads(cls):
            self._reported.add((cls.name, attr))
            self.report(where, self.message.format(attr=attr))

    def _dataset_class(self) -> ClassInfo | None:
        function = self.ctx.current_function()
        if function is None or function.class_info is None:
            return None
        cls = function.class_info
        return cls if cls.kind in {DATASET, ITERABLE_DATASET} else None

    def _item_reads(self, cls: ClassInfo) -> set[str]:
        reads = self._reads.get(cls.name)
        if reads is None:
            reads = self._reads[cls.name] = _attributes_read_per_item(self.ctx, cls)
        return reads


def _holds_records(ctx, value: cst.BaseExpression) -> bool:
    if isinstance(value, cst.Call):
        qualified = ctx.qualified_name(value.func)
        if qualified in _OBJECT_LOADERS:
            return True
        if call_name(value) == "to_dict" and _records_orient(value):
            return True
        if qualified == "builtins.list":
            args = positional_args(value)
            return bool(args) and _is_dict_reader(ctx, args[0].value)
    if isinstance(value, cst.ListComp):
        return _is_record(ctx, value.elt) or _is_dict_reader(ctx, value.for_in.iter)
    return False


def _is_record(ctx, expr: cst.BaseExpression) -> bool:
    """A dict per item: `{...}`, `dict(...)`, `json.loads(line)`."""
    if isinstance(expr, (cst.Dict, cst.DictComp)):
        return True
    if isinstance(expr, cst.Call):
        qualified = ctx.qualified_name(expr.func)
        return qualified in {"builtins.dict", "json.loads", "orjson.loads", "ujson.loads"}
    return False


def _records_orient(call: cst.Call) -> bool:
    orient = keyword_arg(call, "orient")
    value = orient.value if orient is not None else None
    if value is None and positional_args(call):
        value = positional_args(call)[0].value
    return isinstance(value, cst.SimpleString) and value.evaluated_value == "records"


def _is_dict_reader(ctx, expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and ctx.qualified_name(expr.func) == "csv.DictReader"


def _attributes_read_per_item(ctx, cls: ClassInfo) -> set[str]:
    """`self.x[<index>]` in `__getitem__`, `for r in self.x` in `__iter__`."""
    methods = class_methods(ctx, cls)
    reads: set[str] = set()
    getitem = methods.get("__getitem__")
    if getitem is not None:
        params = list(getitem.params.params)
        if len(params) >= 2:
            finder = _IndexedReads(params[1].name.value)
            getitem.body.visit(finder)
            reads |= finder.attributes
    iterate = methods.get("__iter__")
    if iterate is not None:
        finder = _IteratedReads()
        iterate.body.visit(finder)
        reads |= finder.attributes
    return reads


def _self_attribute(expr: cst.BaseExpression) -> str | None:
    dotted = dotted_name(expr)
    if dotted and dotted.startswith("self.") and dotted.count(".") == 1:
        return dotted.split(".")[1]
    return None


class _IndexedReads(cst.CSTVisitor):
    def __init__(self, index: str) -> None:
        self.index = index
        self.attributes: set[str] = set()

    def visit_Subscript(self, node: cst.Subscript) -> None:
        attr = _self_attribute(node.value)
        if attr is not None and any(self.index in names_in(el) for el in node.slice):
            self.attributes.add(attr)


class _IteratedReads(cst.CSTVisitor):
    def __init__(self) -> None:
        self.attributes: set[str] = set()

    def visit_For(self, node: cst.For) -> None:
        attr = _self_attribute(_unwrap_iterable(node.iter))
        if attr is not None:
            self.attributes.add(attr)


VALID = [
    # columns in NumPy arrays
    """
import json
import numpy as np
from torch.utils.data import Dataset
class Records(Dataset):
    def __init__(self, path):
        with open(path) as f:
            records = json.load(f)
        self.x = np.array([r["x"] for r in records], dtype=np.float32)
    def __getitem__(self, i):
        return self.x[i]
""",
    # a small config dict read by key, not per item
    """
import json
from torch.utils.data import Dataset
class Images(Dataset):
    def __init__(self, cfg_path, images):
        self.cfg = json.load(open(cfg_path))
        self.images = images
    def __getitem__(self, i):
        return resize(self.images[i], self.cfg["size"])
""",
    # a list of dicts in a class that is not a Dataset
    """
import json
class Catalog:
    def __init__(self, path):
        self.records = json.load(open(path))
    def __getitem__(self, i):
        return self.records[i]
""",
    # records loaded but never read per item
    """
import json
from torch.utils.data import Dataset
class Scored(Dataset):
    def __init__(self, path, x):
        self.meta = [json.loads(line) for line in open(path)]
        self.x = x
    def __getitem__(self, i):
        return self.x[i]
    def summary(self):
        return len(self.meta)
""",
]

INVALID = [
    Invalid(
        """
import json
from torch.utils.data import Dataset
class Records(Dataset):
    def __init__(self, path):
        with open(path) as f:
            self.records = json.load(f)
    def __getitem__(self, i):
        r = self.records[i]
        return r["x"], r["y"]
"""
    ),
    # a list of dicts built by append; torch.utils.data.Dataset fully qualified
    Invalid(
        """
import torch
class Pairs(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.samples = []
        for a, b in rows:
            self.samples.append({"a": a, "b": b})
    def __len__(self):
        return len(self.samples)
    def __getitem__(self, idx):
        s = self.samples[idx]
        return s["a"], s["b"]
"""
    ),
    # JSON lines comprehension, pandas records, csv.DictReader: one finding each
    Invalid(
        """
import csv, json
import torch.utils.data as tud
class Mixed(tud.Dataset):
    def __init__(self, a, df, c):
        self.lines = [json.loads(line) for line in open(a)]
        self.rows = df.to_dict(orient="records")
        self.cells = list(csv.DictReader(open(c)))
    def __getitem__(self, k):
        return self.lines[k], self.rows[k], self.cells[k]
""",
        count=3,
    ),
    # an IterableDataset iterating its records
    Invalid(
        """
import pickle
from torch.utils.data import IterableDataset as ID
class Stream(ID):
    def __init__(self, path):
        self.items = pickle.load(open(path, "rb"))
    def __iter__(self):
        for item in self.items:
            yield item["x"]
"""
    ),
]
