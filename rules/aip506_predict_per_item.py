"""AIP506 predict-per-item-in-loop."""

from __future__ import annotations

import re

import libcst as cst

from aiperf_lint import walk
from aiperf_lint.patterns import is_model_forward
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import DATALOADER, OTHER, call_name, names_in, positional_args

_PREDICT_METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "decision_function"})
# Wrappers that keep "one item" one item: `np.array([x])`, `torch.tensor([x])`, `.to(device)`.
_WRAPPERS = frozenset({"array", "asarray", "tensor", "as_tensor", "from_numpy", "DataFrame"})
_PASS_THROUGH = frozenset({"to", "cuda", "float", "double", "half", "cpu", "astype", "values"})
_STREAM_NAME = re.compile(r"stream|consumer|queue|socket|camera|webcam|cap\b|frames_in", re.I)
_TIMERS = frozenset({"time", "perf_counter", "perf_counter_ns", "monotonic", "process_time"})
_RECOMMENDER_ROOTS = ("surprise",)
_RECOMMENDER_NAME = re.compile(r"^(algo|svd|knn|recommender|rec_model|model)$", re.I)


class PredictPerItem(Rule):
    """
    ## What it does
    Finds model predictions made one item at a time in a loop over a dataset:
    `model.predict([row])`, `model.predict(x.reshape(1, -1))`,
    `model(x.unsqueeze(0))`, recommender `algo.predict(user, item)`.

    ## Why is this bad
    Every call pays the library's fixed per-call cost (input validation,
    conversion, dispatch, kernel launches) for a single row; one batched call
    (or a few chunks) pays it once. The fixture pair (a NumPy-backed linear
    model, 5,000 rows) measured one batched call at 574x faster than a call per
    row on a CPU (AMD EPYC,
    `aiperf-lint verify fixtures/AIP506_predict_per_item --device cpu`).

    Not reported: request handlers and streams (inputs arrive one at a time),
    `while` loops, loops whose input depends on the previous prediction
    (autoregressive decoding), loops that time each prediction on purpose,
    and calls with a whole batch.

    ## Example
    ```python
    preds = [clf.predict([row])[0] for row in X_test]
    ```

    ## Use instead
    ```python
    preds = clf.predict(X_test)
    ```
    (for very large inputs, predict in chunks of a few thousand rows).

    ## Fix safety
    No fix: the loop body usually does more than predicting.

    ## References
    - scikit-learn, "Computational performance" (bulk vs atomic prediction):
      https://scikit-learn.org/stable/computing/computational_performance.html
    - No ruff rule covers this.
    """

    code = "AIP506"
    name = "predict-per-item-in-loop"
    message = (
        "`{call}` predicts one item per loop iteration; predict the whole batch in one call "
        "(or in chunks) instead"
    )
    triggers = (b"predict", b"unsqueeze", b"reshape(1", b"[None", b"expand_dims", b"view(1")

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._loop_facts: dict[int, _LoopFacts] = {}

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        method = func.attr.value if isinstance(func, cst.Attribute) else None
        if method in _PREDICT_METHODS:
            if self.ctx.kind_of(func.value) == OTHER and method != "predict":
                return
            args = positional_args(node)
            if len(args) == 1:
                self._check(node, args[0].value, f"{method}(...)")
            elif len(args) == 2 and method == "predict" and self._recommender(func.value):
                self._check_pair(node, [a.value for a in args])
        elif len(node.args) == 1 and node.args[0].keyword is None:
            # the cheap shape test first: is_model_forward is the costlier question
            if _single_item(node.args[0].value) is not None and is_model_forward(self.ctx, node):
                self._check(node, node.args[0].value, "model(...)")

    def _recommender(self, receiver) -> bool:
        name = receiver.value if isinstance(receiver, cst.Name) else None
        if name is None or not _RECOMMENDER_NAME.match(name):
            return False
        return any(self.ctx.uses(root) for root in _RECOMMENDER_ROOTS) or name.lower() == "algo"

    def _check(self, node: cst.Call, argument, label: str) -> None:
        item = _single_item(argument)
        if item is None:
            return
        loop = self._item_loop(names_in(item))
        if loop is not None:
            self.report(node, self.message.format(call=label))

    def _check_pair(self, node: cst.Call, arguments) -> None:
        used = set().union(*(names_in(a) for a in arguments))
        if all(names_in(a) for a in arguments) and self._item_loop(used) is not None:
            self.report(node, self.message.format(call="predict(user, item)"))

    def _item_loop(self, used: set[str]):
        """The enclosing loop over a dataset whose item the argument is built from."""
        frame = self.ctx.current_function()
        if frame is not None and frame.is_request_handler():
            return None
        for loop in reversed(self.ctx.loops):
            if isinstance(loop.node, cst.While):
                return None
            facts = self._facts(loop)
            derived = loop.targets | facts.from_targets(loop.targets)
            if not used & derived:
                continue
            if used & facts.from_predictions or facts.timed or self._streamed(loop):
                return None
            return loop
        return None

    def _streamed(self, loop) -> bool:
        if loop.iter_kind == DATALOADER or loop.iterates_loader():
            return True  # a loader yields batches already
        text = cst.Module([]).code_for_node(loop.iter_expr) if loop.iter_expr is not None else ""
        return bool(_STREAM_NAME.search(text))

    def _facts(self, loop) -> _LoopFacts:
        key = id(loop.node)
        if key not in self._loop_facts:
            facts = _LoopFacts(self.ctx)
            body = loop.node.body if isinstance(loop.node, cst.For) else loop.node
            walk.visit(body, facts)
            self._loop_facts[key] = facts
        return self._loop_facts[key]


def _single_item(expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """The item inside a one-item batch expression, else None."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        if expr.func.attr.value not in _PASS_THROUGH:
            break
        expr = expr.func.value
    while isinstance(expr, cst.Attribute) and expr.attr.value in _PASS_THROUGH:
        expr = expr.value
    if isinstance(expr, cst.List) and len(expr.elements) == 1:
        inner = expr.elements[0].value
        return inner if not isinstance(inner, cst.StarredElement) else None
    if isinstance(expr, cst.Call):
        name = call_name(expr)
        args = positional_args(expr)
        if name in _WRAPPERS and len(args) >= 1 and isinstance(args[0].value, cst.List):
            return _single_item(args[0].value)
        if isinstance(expr.func, cst.Attribute):
            owner = expr.func.value
            if name in {"reshape", "view"} and args and _is_one(args[0].value) and len(args) >= 2:
                return owner
            if name == "unsqueeze" and len(args) == 1 and _is_zero(args[0].value):
                return owner
        if name == "expand_dims" and len(args) == 2 and _is_zero(args[1].value):
            return args[0].value
    if isinstance(expr, cst.Subscript) and len(expr.slice) >= 1:
        first = expr.slice[0].slice
        if isinstance(first, cst.Index) and (
            (isinstance(first.value, cst.Name) and first.value.value == "None")
            or (isinstance(first.value, cst.Attribute) and first.value.attr.value == "newaxis")
        ):
            return expr.value
    return None


def _is_one(expr) -> bool:
    return isinstance(expr, cst.Integer) and expr.value == "1"


def _is_zero(expr) -> bool:
    return isinstance(expr, cst.Integer) and expr.value == "0"


class _LoopFacts(cst.CSTVisitor):
    """Per loop body: names assigned from a prediction, names assigned from others, timers."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.assignments: list[tuple[set[str], set[str]]] = []
        self.from_predictions: set[str] = set()
        self.timed = False

    def visit_Assign(self, node: cst.Assign) -> None:
        targets: set[str] = set()
        for t in node.targets:
            targets |= names_in(t.target)
        self.assignments.append((targets, names_in(node.value)))
        if _has_prediction(node.value):
            self.from_predictions |= targets

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.assignments.append((names_in(node.target), names_in(node.value)))
        if _has_prediction(node.value):
            self.from_predictions |= names_in(node.target)

    def visit_Call(self, node: cst.Call) -> None:
        if call_name(node) in _TIMERS:
            self.timed = True

    def from_targets(self, targets: set[str]) -> set[str]:
        """Names computed (transitively) from the loop's own variables."""
        derived = set(targets)
        changed = True
        while changed:
            changed = False
            for assigned, read in self.assignments:
                if read & derived and not assigned <= derived:
                    derived |= assigned
                    changed = True
        return derived - targets


def _has_prediction(expr: cst.BaseExpression) -> bool:
    finder = _PredictionCall()
    walk.visit(expr, finder)
    return finder.found


class _PredictionCall(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        if (
            name in _PREDICT_METHODS
            or name in {"generate", "forward"}
            or (
                isinstance(node.func, (cst.Name, cst.Attribute))
                and re.search(r"model|net", call_name(node) or "", re.I)
            )
        ):
            self.found = True


VALID = [
    # the batched call
    """
from sklearn.linear_model import LogisticRegression
clf = LogisticRegression().fit(X, y)
preds = clf.predict(X_test)
""",
    # a request handler predicts what arrives
    """
from fastapi import FastAPI
app = FastAPI()
@app.post("/predict")
def predict(rows: list):
    out = []
    for row in rows:
        out.append(clf.predict([row])[0])
    return out
""",
    # autoregressive decoding: the next input is the previous prediction
    """
import torch
def decode(model, x, steps):
    tokens = []
    for _ in range(steps):
        logits = model(x.unsqueeze(0))
        x = logits.argmax(-1)[0]
        tokens.append(x)
    return tokens
""",
    # timing each prediction on purpose
    """
import time
latencies = []
for row in X_test:
    start = time.perf_counter()
    clf.predict([row])
    latencies.append(time.perf_counter() - start)
""",
    # a stream read one frame at a time
    """
import torch
while True:
    ok, frame = cap.read()
    out = model(torch.from_numpy(frame).unsqueeze(0))
""",
    # a loop over batches from a DataLoader
    """
import torch
from torch.utils.data import DataLoader
loader = DataLoader(ds, batch_size=64)
for x, y in loader:
    out = model(x)
""",
    # a loop over configs, predicting a whole test set each time
    """
for params in grid:
    clf.set_params(**params)
    scores.append(clf.predict(X_test))
""",
]

INVALID = [
    Invalid(
        """
from sklearn.ensemble import RandomForestClassifier
clf = RandomForestClassifier().fit(X, y)
preds = [clf.predict([row])[0] for row in X_test]
"""
    ),
    Invalid(
        """
import numpy as np
preds = []
for i in range(len(X_test)):
    x = X_test[i]
    preds.append(model.predict(x.reshape(1, -1)))
"""
    ),
    Invalid(
        """
import torch
def embed_all(model, images):
    outs = []
    for img in images:
        outs.append(model(img.unsqueeze(0).to("cuda")))
    return outs
"""
    ),
    # recommender: one (user, item) pair per call
    Invalid(
        """
from surprise import SVD
algo = SVD()
algo.fit(trainset)
scores = [algo.predict(uid, iid).est for uid, iid in pairs]
"""
    ),
]
