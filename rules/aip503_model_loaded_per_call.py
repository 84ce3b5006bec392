"""AIP503 model-loaded-per-call."""

from __future__ import annotations

import re

import libcst as cst

from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import call_name, dotted_name, keyword_arg, names_in, positional_args

_LOADERS = frozenset(
    {
        "torch.load",
        "torch.jit.load",
        "transformers.pipeline",
        "onnxruntime.InferenceSession",
        "keras.models.load_model",
        "tensorflow.keras.models.load_model",
        "sentence_transformers.SentenceTransformer",
        "fastai.learner.load_learner",
        "fastai.vision.all.load_learner",
        "fastai.text.all.load_learner",
        "fastai.tabular.all.load_learner",
    }
)
# Generic unpicklers load a model only when the result is named like one.
_UNPICKLERS = frozenset(
    {"joblib.load", "pickle.load", "pickle.loads", "cloudpickle.load", "dill.load"}
)
_MODEL_TARGET = re.compile(
    r"model|clf|classifier|regressor|estimator|pipe|vectori[sz]er|encoder|scaler|learner|predictor|net\b",
    re.IGNORECASE,
)
_CACHING_DECORATORS = frozenset(
    {
        "functools.lru_cache",
        "functools.cache",
        "functools.cached_property",
        "streamlit.cache_resource",
        "streamlit.cache_data",
        "streamlit.cache",
        "streamlit.experimental_singleton",
        "streamlit.experimental_memo",
    }
)
# Functions that run once per process or object, by name.
_ONCE_FUNCTIONS = frozenset(
    {"__init__", "__post_init__", "setup", "startup", "on_startup", "lifespan"}
)
_PER_ITEM_METHODS = frozenset(
    [
        "map",
        "imap",
        "imap_unordered",
        "starmap",
        "submit",
        "apply",
        "apply_async",
        "map_async",
        "applymap",
        "progress_apply",
        "parallel_apply",
    ]
)
_LOADER_HELPER = re.compile(
    r"model|load|pipeline|predictor|classifier|session|checkpoint|ckpt", re.I
)
_TRAIN_CALL = re.compile(r"(^|_)(train|fit|finetune|fine_tune)(_|$)", re.IGNORECASE)
_COLLECT_METHODS = frozenset({"append", "extend", "insert", "add", "setdefault"})

_HANDLER_MESSAGE = (
    "`{loader}` in request handler `{func}` loads the model on every request; load it once "
    "(module level, a startup/lifespan hook, `__init__`, or an `lru_cache`d loader) and reuse it"
)
_LOOP_MESSAGE = "`{loader}` loads the same model on every iteration of this loop; load it once before the loop and reuse it"
_PER_ITEM_MESSAGE = (
    "`{loader}` in `{func}`, which runs once per item (passed to `{via}`), loads the model for every "
    "item; load it once outside and pass it in, or cache the loader with `functools.lru_cache`"
)


class ModelLoadedPerCall(Rule):
    """
    ## What it does
    Finds model loading (`torch.load`, `torch.jit.load`, `*.from_pretrained(...)`,
    `transformers.pipeline(...)`, `onnxruntime.InferenceSession(...)`,
    `keras.models.load_model`, `joblib.load`/`pickle.load` of a model) that
    runs per request or per item: inside a web request handler (FastAPI,
    Starlette, Flask, Django views, gRPC servicer methods), inside a loop with
    the same arguments every iteration, or inside a function applied per item
    with `map`/`submit`/`apply`. A same-module helper that loads a model,
    called from those places, is reported at the call.

    ## Why is this bad
    Loading reads the weights from disk, unpickles them and builds the
    module: milliseconds for a small network, seconds to minutes for a large
    one, every time. The prediction itself is usually a small fraction of
    that, so request latency and throughput are set by the reload. For a
    3-layer MLP (0.4 M parameters) answering 200 single-row requests,
    rebuilding it and `torch.load`ing its weights per request took 13.5 s,
    loading once 153 ms: 88x (`aiperf-lint verify --rule AIP503`, 2-core
    CPU shared with other jobs, so absolute times are inflated).

    Not reported: loads at module level, in `__init__`, in startup/lifespan
    hooks, in functions cached with `functools.lru_cache`/`cache` or
    `st.cache_resource`, behind a load-once guard (`if model is None:`,
    `if name not in cache:`), loops over different checkpoint files (model
    averaging, evaluating checkpoints), loops that train what they load
    (cross-validation folds), and loops that collect several copies.

    ## Example
    ```python
    @app.post("/predict")
    def predict(req: Request):
        model = torch.jit.load("model.pt")
        return model(req.x).tolist()
    ```

    ## Use instead
    ```python
    model = torch.jit.load("model.pt")

    @app.post("/predict")
    def predict(req: Request):
        return model(req.x).tolist()
    ```

    ## Fix safety
    No automatic fix: where to keep the loaded model (module level, app
    state, a cache keyed by model name) depends on the application.

    ## References
    - FastAPI, "Lifespan Events" (load models once at start-up): https://fastapi.tiangolo.com/advanced/events/
    - Streamlit, `st.cache_resource`: https://docs.streamlit.io/develop/api-reference/caching-and-state/st.cache_resource
    - No ruff rule reports per-call model loading.
    """

    code = "AIP503"
    name = "model-loaded-per-call"
    message = "model loaded on every call; load it once and reuse it"
    triggers = (b"load", b"pretrained", b"pipeline", b"InferenceSession", b"SentenceTransformer")

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._per_item: dict[str, str] | None = None
        self._helpers: dict[int, str | None] = {}

    def visit_Call(self, node: cst.Call) -> None:
        frame = self.ctx.current_function()
        if frame is None:
            return  # module level: a script's one load (Streamlit apps: AIP505)
        loader = self._loader(node)
        if loader is None:
            helper = self.ctx.resolve_function(node.func)
            loader = self._helper_loader(helper) if helper is not None else None
            if loader is not None:
                loader = f"{dotted_name(node.func)}()` -> `{loader}"
        if loader is None or self._loaded_once(frame):
            return
        if frame.is_request_handler():
            self.report(node, _HANDLER_MESSAGE.format(loader=loader, func=frame.name))
        elif self._reloaded_per_iteration(node):
            self.report(node, _LOOP_MESSAGE.format(loader=loader))
        elif frame.name in self._per_item_functions() and not _loads_the_item(node, frame.node):
            via = self._per_item_functions()[frame.name]
            self.report(node, _PER_ITEM_MESSAGE.format(loader=loader, func=frame.name, via=via))

    # ------------------------------------------------------------ what loads

    def _loader(self, node: cst.Call) -> str | None:
        qname = self.ctx.qualified_name(node.func)
        if qname in _LOADERS:
            return qname
        if call_name(node) == "from_pretrained" and isinstance(node.func, cst.Attribute):
            return f"{dotted_name(node.func.value) or '...'}.from_pretrained"
        if qname in _UNPICKLERS and _MODEL_TARGET.search(" ".join(self._assigned_names())):
            return qname
        return None

    def _assigned_names(self) -> list[str]:
        statement = self.ctx.current_statement()
        if not isinstance(statement, (cst.SimpleStatementLine, cst.With)):
            return []
        if isinstance(statement, cst.With):
            return [dotted_name(i.asname.name) or "" for i in statement.items if i.asname]
        out = []
        for small in statement.body:
            if isinstance(small, cst.Assign):
                out += [dotted_name(t.target) or "" for t in small.targets]
            elif isinstance(small, cst.AnnAssign):
                out.append(dotted_name(small.target) or "")
        return out

    def _helper_loader(self, helper: cst.FunctionDef) -> str | None:
        """A same-module function that loads a model every time it is called."""
        key = id(helper)
        if key not in self._helpers:
            self._helpers[key] = None
            if self._may_load_per_call(helper):
                finder = _UnguardedLoad(self.ctx)
                helper.body.visit(finder)
                self._helpers[key] = finder.loader
        return self._helpers[key]

    def _may_load_per_call(self, helper: cst.FunctionDef) -> bool:
        # only helpers named for loading: `_broadcast_object` may torch.load a received buffer
        name = helper.name.value
        cached = _CACHING_DECORATORS.intersection(self.ctx.decorator_names(helper))
        return bool(_LOADER_HELPER.search(name)) and name not in _ONCE_FUNCTIONS and not cached

    # ------------------------------------------------------------ where

    def _loaded_once(self, frame) -> bool:
        if frame.name in _ONCE_FUNCTIONS or _CACHING_DECORATORS.intersection(frame.decorators):
            return True
        for ancestor in reversed(self.ctx.ancestors):
            if ancestor is frame.node:
                return False
            if isinstance(ancestor, cst.If) and is_load_once_guard(ancestor.test):
                return True
        return False

    def _reloaded_per_iteration(self, node: cst.Call) -> bool:
        loop = self.ctx.current_loop()
        if loop is None or self._collects_copies():
            return False
        arguments = [arg.value for arg in node.args]
        if not all(loop.is_invariant(arg) for arg in arguments):
            return False  # a different checkpoint per iteration
        if loop.is_comprehension:
            return True
        facts = loop.facts()
        return not (
            facts.calls_backward or facts.calls_optimizer_step or _calls_training(loop.node)
        )

    def _collects_copies(self) -> bool:
        """`models.append(torch.load(p))`, `replicas[i] = load(p)`: several copies on purpose."""
        statement = self.ctx.current_statement()
        if not isinstance(statement, cst.SimpleStatementLine):
            return False
        for small in statement.body:
            if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                if call_name(small.value) in _COLLECT_METHODS:
                    return True
            if isinstance(small, cst.Assign) and any(
                isinstance(t.target, cst.Subscript) for t in small.targets
            ):
                return True
        return False

    def _per_item_functions(self) -> dict[str, str]:
        """Module functions passed as the per-item callable of map/submit/apply (name -> via)."""
        if self._per_item is None:
            finder = _PerItemCallables()
            self.ctx.module.visit(finder)
            self._per_item = finder.found
        return self._per_item


def _loads_the_item(node: cst.Call, function: cst.FunctionDef) -> bool:
    """`pool.map(load, model_names)`: each item names a different model to load."""
    params = {p.name.value for p in (*function.params.posonly_params, *function.params.params)}
    return any(names_in(arg.value) & params for arg in node.args)


def is_load_once_guard(test: cst.BaseExpression) -> bool:
    """`if model is None:`, `if name not in cache:`, `if not loaded:`, `if not hasattr(self, "m"):`."""
    if isinstance(test, cst.BooleanOperation):
        return is_load_once_guard(test.left) or is_load_once_guard(test.right)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return isinstance(test.expression, (cst.Name, cst.Attribute, cst.Call, cst.Subscript))
    if isinstance(test, cst.Comparison):
        for target in test.comparisons:
            if isinstance(target.operator, cst.NotIn):
                return True
            if isinstance(target.operator, (cst.Is, cst.Equal)) and _is_none(target.comparator):
                return True
    return False


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _calls_training(loop: cst.CSTNode) -> bool:
    finder = _TrainingCall()
    loop.visit(finder)
    return finder.found


class _TrainingCall(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Call(self, node: cst.Call) -> None:
        if _TRAIN_CALL.search(call_name(node) or ""):
            self.found = True


class _UnguardedLoad(cst.CSTVisitor):
    """The first model-loading call in a helper body not behind a load-once guard."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.loader: str | None = None

    def visit_If(self, node: cst.If) -> bool:
        return not is_load_once_guard(node.test)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if self.loader is not None:
            return
        dotted = dotted_name(node.func) or ""
        head, _, rest = dotted.partition(".")
        qualified = self.ctx.imports.get(head)
        full = f"{qualified}.{rest}" if qualified and rest else qualified
        if full in _LOADERS:
            self.loader = full
        elif call_name(node) == "from_pretrained":
            self.loader = f"{dotted.rsplit('.', 1)[0] or '...'}.from_pretrained"


class _PerItemCallables(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        is_builtin_map = isinstance(node.func, cst.Name) and name == "map"
        if not (
            is_builtin_map or (isinstance(node.func, cst.Attribute) and name in _PER_ITEM_METHODS)
        ):
            return
        args = positional_args(node)
        func = keyword_arg(node, "func")
        callable_ = func.value if func else (args[0].value if args else None)
        if isinstance(callable_, cst.Name):
            self.found.setdefault(callable_.value, f"{dotted_name(node.func) or name}")


VALID = [
    # module level, __init__, startup hook, lifespan: loaded once
    """
import torch
from fastapi import FastAPI
app = FastAPI()
model = torch.jit.load("model.pt")
class Predictor:
    def __init__(self, path):
        self.model = torch.jit.load(path)
@app.on_event("startup")
def load_models():
    app.state.model = torch.jit.load("model.pt")
@app.post("/predict")
def predict(x):
    return model(x)
""",
    # load-once guards: `if model is None:`, a dict cache, lru_cache
    """
import functools, torch
from transformers import AutoModel
from fastapi import FastAPI
app = FastAPI()
_model = None
_cache = {}
@functools.lru_cache(maxsize=None)
def get_model(name):
    return AutoModel.from_pretrained(name)
@app.post("/a")
def a(x):
    global _model
    if _model is None:
        _model = torch.jit.load("m.pt")
    return _model(x)
@app.post("/b/{name}")
def b(name, x):
    if name not in _cache:
        _cache[name] = AutoModel.from_pretrained(name)
    return get_model(name)(x)
""",
    # torch.load in a loop over different checkpoint files (averaging)
    """
import torch
def average(paths):
    states = []
    for p in paths:
        states.append(torch.load(p))
    for i, ckpt in enumerate(paths):
        state = torch.load(ckpt, map_location="cpu")
    return [torch.load(f"ckpt_{k}.pt") for k in range(5)]
""",
    # a fresh pretrained model per cross-validation fold, trained in the loop
    """
from transformers import AutoModelForSequenceClassification
def cross_validate(folds, name):
    for fold in folds:
        model = AutoModelForSequenceClassification.from_pretrained(name)
        train(model, fold)
""",
    # several replicas collected on purpose
    """
import torch
def replicas(n, path):
    models = []
    for _ in range(n):
        models.append(torch.jit.load(path))
    return models
""",
    # a Streamlit script's module level is AIP505's business, not this rule's
    """
import streamlit as st
import torch
model = torch.load("model.pt")
st.write(model)
""",
    # pickle.load of data, not a model; same `load` name on a non-loader
    """
import pickle
from fastapi import FastAPI
app = FastAPI()
@app.get("/stats")
def stats():
    with open("stats.pkl", "rb") as f:
        numbers = pickle.load(f)
    return config.load("x")
""",
    # each item names a different model: loading them in parallel is the point
    """
from concurrent.futures import ThreadPoolExecutor
from transformers import AutoModel
def fetch(name):
    return AutoModel.from_pretrained(name)
with ThreadPoolExecutor(4) as pool:
    models = list(pool.map(fetch, ["bert-base-uncased", "roberta-base"]))
""",
    # a helper not named for model loading (torch.load of a received buffer) in a loop
    """
import io, torch
def _receive_object(buffer):
    return torch.load(io.BytesIO(buffer))
def gather(ranks, buffer):
    for rank in ranks:
        state = _receive_object(buffer)
""",
    # a helper that loads once behind a guard, called from a handler
    """
import torch
_model = None
def get_model():
    global _model
    if _model is None:
        _model = torch.jit.load("m.pt")
    return _model
@app.post("/p")
def predict(x):
    return get_model()(x)
""",
]

INVALID = [
    Invalid(
        """
import torch
from fastapi import FastAPI
app = FastAPI()
@app.post("/predict")
async def predict(x):
    model = torch.jit.load("model.pt")
    return model(x)
"""
    ),
    # Flask view, transformers pipeline and from_pretrained
    Invalid(
        """
from flask import Flask
from transformers import pipeline, AutoTokenizer
app = Flask(__name__)
@app.route("/classify", methods=["POST"])
def classify():
    tok = AutoTokenizer.from_pretrained("bert-base-uncased")
    clf = pipeline("sentiment-analysis")
    return clf(request.json["text"])
""",
        count=2,
    ),
    # gRPC servicer method, onnxruntime session and a joblib'd model
    Invalid(
        """
import joblib
import onnxruntime as ort
class Predictor(pb2_grpc.PredictorServicer):
    def Predict(self, request, context):
        sess = ort.InferenceSession("model.onnx")
        clf = joblib.load("clf.joblib")
        return sess.run(None, {"x": request.x})
""",
        count=2,
    ),
    # same checkpoint reloaded on every iteration
    Invalid(
        """
import torch
def predict_all(batches, path):
    outputs = []
    for x in batches:
        model = torch.jit.load(path)
        outputs.append(model(x))
    return outputs
"""
    ),
    # a function applied per row, and a helper that loads, called per request
    Invalid(
        """
import torch
from transformers import AutoModel
def embed(text):
    model = AutoModel.from_pretrained("bert-base-uncased")
    return model(text)
def load_model():
    return torch.jit.load("model.pt")
df["emb"] = df["text"].apply(embed)
@app.get("/p")
def predict(x):
    return load_model()(x)
""",
        count=2,
    ),
]
