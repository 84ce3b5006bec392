"""AIP505 streamlit-model-not-cached."""

from __future__ import annotations

import re

import libcst as cst

from aiperf_lint.model import Fix
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import call_name, dotted_name

_LOADERS = frozenset(
    {
        "torch.load",
        "torch.jit.load",
        "transformers.pipeline",
        "onnxruntime.InferenceSession",
        "keras.models.load_model",
        "tensorflow.keras.models.load_model",
        "tf_keras.models.load_model",
        "sentence_transformers.SentenceTransformer",
        "fastai.learner.load_learner",
        "fastai.vision.all.load_learner",
        "fastai.text.all.load_learner",
        "fastai.tabular.all.load_learner",
        "ultralytics.YOLO",
    }
)
# Generic unpicklers load a model only when the result (or the function) is named like one.
_UNPICKLERS = frozenset({"joblib.load", "pickle.load", "cloudpickle.load", "dill.load"})
_MODEL_WORD = re.compile(
    r"model|clf|classifier|regressor|estimator|pipe|vectori[sz]er|learner|predictor|net\b",
    re.IGNORECASE,
)
_CACHES = frozenset(
    {
        "streamlit.cache_resource",
        "streamlit.cache_data",
        "streamlit.cache",
        "streamlit.experimental_singleton",
        "streamlit.experimental_memo",
        "functools.lru_cache",
        "functools.cache",
    }
)


class StreamlitModelNotCached(Rule):
    """
    ## What it does
    Finds model loads (`torch.load`, `from_pretrained`, `pipeline(...)`,
    `joblib.load`/`pickle.load` of a model, `load_learner`,
    `keras.models.load_model`, ...) in a Streamlit script, at the top level or
    in a function without `@st.cache_resource`.

    ## Why is this bad
    Streamlit re-runs the whole script from the top on every interaction (a
    click, a slider move, a text input): an uncached load reads and
    deserializes the model again each time. `@st.cache_resource` keeps one
    loaded model for the process. The fixture pair (a 16 MB pickled model,
    20 simulated re-runs) measured 630 ms uncached against 145 us cached on a
    CPU (AMD EPYC, `aiperf-lint verify fixtures/AIP505_streamlit_uncached_model
    --device cpu`): once cached, a re-run no longer touches the file at all.

    Not reported: loaders decorated with `st.cache_resource` (or
    `st.cache_data`, `functools.lru_cache`), loads guarded by
    `st.session_state`, helpers only called from a cached loader, and calls of
    a loader imported from another module (which can be cached there).

    ## Example
    ```python
    import streamlit as st

    def load_model():
        return AutoModel.from_pretrained("bert-base-uncased")

    model = load_model()
    ```

    ## Use instead
    ```python
    import streamlit as st

    @st.cache_resource
    def load_model():
        return AutoModel.from_pretrained("bert-base-uncased")

    model = load_model()
    ```

    ## Fix safety
    Safe for a module-level function that loads the model: the fix adds
    `@st.cache_resource` above it. The cached object is shared by all users
    and sessions, which is right for a model used read-only; a loader whose
    result is mutated per session needs `st.session_state` instead. A load at
    the top level of the script is reported without a fix (move it into a
    cached function).

    ## References
    - Streamlit `st.cache_resource`: https://docs.streamlit.io/develop/api-reference/caching-and-state/st.cache_resource
    - Streamlit "Caching overview": https://docs.streamlit.io/develop/concepts/architecture/caching
    - AIP503 reports loads per request in web servers; it leaves Streamlit
      module level to this rule.
    """

    code = "AIP505"
    name = "streamlit-model-not-cached"
    message = (
        "`{loader}` reloads the model on every Streamlit re-run (each interaction); "
        "load it in a function decorated with `@st.cache_resource`"
    )
    fix_kind = "sometimes"
    triggers = (b"streamlit",)

    def visit_Call(self, node: cst.Call) -> None:
        if not self.ctx.uses("streamlit"):
            return
        loader = self._loader(node)
        if loader is None or self._session_guarded():
            return
        frame = self.ctx.current_function()
        if frame is None:
            if self.ctx.current_class() is None:
                self.report(node, self.message.format(loader=loader))
            return
        function = frame.node
        if frame.is_method or not isinstance(function, cst.FunctionDef):
            return
        if not self._top_level_def(function) or self._cached(function):
            return
        if not self._runs_per_rerun(function.name.value):
            return
        fix = self._fix(function) if _returns_load(function, node) else None
        self.report(node, self.message.format(loader=loader), fix)

    def _loader(self, node: cst.Call) -> str | None:
        qname = self.ctx.qualified_name(node.func)
        if qname in _LOADERS:
            return qname
        if call_name(node) == "from_pretrained" and isinstance(node.func, cst.Attribute):
            return f"{dotted_name(node.func.value) or '...'}.from_pretrained"
        if qname in _UNPICKLERS and self._model_named():
            return qname
        return None

    def _model_named(self) -> bool:
        frame = self.ctx.current_function()
        if frame is not None and _MODEL_WORD.search(frame.name):
            return True
        statement = self.ctx.current_statement()
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                targets = []
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                elif isinstance(small, cst.AnnAssign):
                    targets = [small.target]
                if any(_MODEL_WORD.search(dotted_name(t) or "") for t in targets):
                    return True
        return False

    def _session_guarded(self) -> bool:
        """`if "model" not in st.session_state:` / `st.session_state.model = ...`."""
        statement = self.ctx.current_statement()
        if statement is not None and "session_state" in _text(statement).split("=")[0]:
            return True
        return any(
            isinstance(node, cst.If) and "session_state" in _text(node.test)
            for node in self.ctx.ancestors
        )

    def _top_level_def(self, function: cst.FunctionDef) -> bool:
        return self.ctx.functions.get(function.name.value) is function

    def _cached(self, function: cst.FunctionDef) -> bool:
        return bool(_CACHES.intersection(self.ctx.decorator_names(function)))

    def _runs_per_rerun(self, name: str) -> bool:
        """Called from the script (or an uncached function), not only from cached loaders."""
        for site in self.ctx.call_sites(name):
            caller = site.function
            if caller is None or not self._cached(caller):
                return True
        return False

    def _fix(self, function: cst.FunctionDef) -> Fix | None:
        alias = self._streamlit_alias()
        if alias is None:
            return None
        decorator = cst.Decorator(cst.Attribute(cst.Name(alias), cst.Name("cache_resource")))
        updated = function.with_changes(decorators=[decorator, *function.decorators])
        return Fix("safe", {function: updated}, description="cache the loader")

    def _streamlit_alias(self) -> str | None:
        for alias, module in self.ctx.imports.items():
            if module == "streamlit":
                return alias
        return None


def _returns_load(function: cst.FunctionDef, load: cst.Call) -> bool:
    """The function is a loader: it returns the loaded object (directly or through one name).

    A function that predicts with the model must not be cached (its results would be).
    """
    body = function.body.body
    last = body[-1] if body else None
    if not (isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[0], cst.Return)):
        return False
    value = last.body[0].value
    if value is load:
        return True
    if not isinstance(value, cst.Name):
        return False
    for statement in body[:-1]:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign) and small.value is load:
                    return any(dotted_name(t.target) == value.value for t in small.targets)
        elif isinstance(statement, cst.With):
            inner = statement.body.body
            if inner and isinstance(inner[-1], cst.SimpleStatementLine):
                small = inner[-1].body[0]
                if isinstance(small, cst.Assign) and small.value is load:
                    return any(dotted_name(t.target) == value.value for t in small.targets)
    return False


def _text(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


VALID = [
    # the cached loader
    """
import streamlit as st
import torch

@st.cache_resource
def load_model():
    return torch.load("model.pt")

model = load_model()
st.write(model)
""",
    # a cached loader imported from another module
    """
import streamlit as st
from app.models import load_model
model = load_model()
""",
    # not a Streamlit script: module level runs once
    """
import torch
model = torch.load("model.pt")
""",
    # session_state guard keeps one model per session
    """
import streamlit as st
import joblib
if "model" not in st.session_state:
    st.session_state.model = joblib.load("model.joblib")
""",
    # pickle.load of data, not a model (st.cache_data territory, not this rule)
    """
import pickle
import streamlit as st
with open("stats.pkl", "rb") as f:
    stats = pickle.load(f)
""",
    # a helper called only from a cached loader
    """
import streamlit as st
from transformers import AutoModel
def build(name):
    return AutoModel.from_pretrained(name)
@st.cache_resource
def get_model():
    return build("bert-base-uncased")
model = get_model()
""",
    # lru_cache works too
    """
import functools
import streamlit as st
from transformers import pipeline
@functools.lru_cache(maxsize=1)
def get_pipe():
    return pipeline("sentiment-analysis")
st.write(get_pipe()("hi"))
""",
]

INVALID = [
    Invalid(
        """
import streamlit as st
from transformers import AutoModel

def load_model():
    return AutoModel.from_pretrained("bert-base-uncased")

model = load_model()
""",
        fixed="""
import streamlit as st
from transformers import AutoModel

@st.cache_resource
def load_model():
    return AutoModel.from_pretrained("bert-base-uncased")

model = load_model()
""",
    ),
    # top-level loads: reported, no fix
    Invalid(
        """
import streamlit
import torch
from fastai.vision.all import load_learner
learn = load_learner("export.pkl")
net = torch.load("net.pt")
streamlit.write(learn, net)
""",
        count=2,
    ),
    # joblib model loaded inside a predict function: reported, no fix (caching
    # `predict` would cache its results, not the model)
    Invalid(
        """
import joblib
import streamlit as st

def predict(x):
    model = joblib.load("model.joblib")
    return model.predict([x])

if st.button("Predict"):
    st.write(predict(st.number_input("x")))
"""
    ),
    # a pickled model loaded in a with block and returned: fixed
    Invalid(
        """
import pickle
import streamlit as st

def load_classifier(path):
    with open(path, "rb") as f:
        clf = pickle.load(f)
    return clf

clf = load_classifier("clf.pkl")
""",
        fixed="""
import pickle
import streamlit as st

@st.cache_resource
def load_classifier(path):
    with open(path, "rb") as f:
        clf = pickle.load(f)
    return clf

clf = load_classifier("clf.pkl")
""",
    ),
    # keras loader in an uncached function
    Invalid(
        """
import streamlit as st
from tensorflow import keras
def get_model():
    return keras.models.load_model("m.h5")
m = get_model()
"""
    ),
]
