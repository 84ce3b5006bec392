"""AIP502 blocking-call-in-async."""

from __future__ import annotations

import re

import libcst as cst

from aiperf_lint.model import Fix, ImportSpec
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import FILE, TOKEN_STREAMER, call_name, dotted_name

_HTTP_VERBS = frozenset(["get", "post", "put", "patch", "delete", "head", "options", "request"])
_SUBPROCESS = frozenset(
    ["run", "call", "check_call", "check_output", "getoutput", "getstatusoutput"]
)
_FILE_IO_METHODS = frozenset(["read", "readline", "readlines", "write", "writelines"])
# Other ways to run a program and wait for it, by qualified name.
_RUNS_PROGRAM = frozenset({"os.system", "os.popen", "pexpect.run", "ffmpeg.run"})
_RUNS_PROGRAM_MODULES = ("plumbum.cmd.",)
# Sync generators that run a model step per item (ChatGLM-style `stream_chat`).
_STREAM_METHODS = frozenset({"stream_chat", "stream_generate", "generate_stream", "chat_stream"})

# Helpers that run a callable in a worker thread: calls inside their arguments
# (a lambda, a partial) do not run on the event loop.
_OFFLOAD_QUALIFIED = frozenset(
    {
        "asyncio.to_thread",
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "anyio.to_thread.run_sync",
        "asyncer.asyncify",
        "asgiref.sync.sync_to_async",
    }
)
_OFFLOAD_METHODS = frozenset({"run_in_executor", "to_thread", "run_sync", "run_in_threadpool"})
_OFFLOAD_NAME = re.compile(
    r"(^|_)(make_async|to_async|async_wrap|asyncify|run_async|sync_to_async|in_thread)", re.I
)

_SLEEP_MESSAGE = (
    "`{callee}()` blocks the event loop in `async def {func}`; use `await asyncio.sleep(...)`"
)
_HTTP_MESSAGE = (
    "blocking HTTP call `{callee}()` in `async def {func}` stalls every other request; "
    "use an async client (`httpx.AsyncClient`, `aiohttp`) or `await asyncio.to_thread(...)`"
)
_SUBPROCESS_MESSAGE = (
    "`{callee}()` blocks the event loop in `async def {func}`; use "
    "`await asyncio.create_subprocess_exec(...)` or `await asyncio.to_thread(...)`"
)
_FILE_MESSAGE = (
    "blocking file `{method}()` in `async def {func}`; use `await asyncio.to_thread(...)` "
    "(or an async file library) for large files"
)
_STREAM_MESSAGE = (
    "synchronous iteration over a token stream `{what}` in `async def {func}` blocks the "
    "event loop between tokens; use an async stream (`AsyncTextIteratorStreamer` with "
    "`async for`) or fetch each item in a thread (`await asyncio.to_thread(next, it, None)`)"
)
_MODEL_MESSAGE = (
    "synchronous model inference `{callee}(...)` in `async def {func}` blocks every other "
    "request while it runs; use `await asyncio.to_thread(...)` / `loop.run_in_executor(...)`, "
    "or declare the endpoint with plain `def` (FastAPI runs those in a thread pool)"
)


class BlockingCallInAsync(Rule):
    """
    ## What it does
    Finds blocking calls inside `async def`: `time.sleep`, `requests.*`,
    `urllib.request.urlopen`, `subprocess.run/call/check_output`, `os.system`,
    file reads and writes, and synchronous model inference (`model(x)`,
    `model.generate(...)`, a called `pipeline(...)`, an onnxruntime session's
    `.run(...)`) inside an `async def` request handler or predict function.
    Also other ways to run a program and wait for it (`os.popen`, ffmpeg-python's
    `.run()` / `ffmpeg.run(...)`, `sh.<command>(...)`, `plumbum.cmd` commands,
    `pexpect.run`) and a plain `for` over a token stream (a transformers
    `TextIteratorStreamer`, `model.stream_chat(...)`).

    ## Why is this bad
    An event loop runs one coroutine at a time; a blocking call stops all the
    others until it returns. In a web server every concurrent request waits.
    Measured on a 2-core CPU (`../shared/notes/speedups-cpu.md`, pair 9): 50
    concurrent tasks that each `time.sleep(0.01)` take 510 ms; with
    `await asyncio.sleep(0.01)` they take 11.5 ms (44x); offloading the
    blocking call with `asyncio.to_thread` takes 94 ms (5.4x, bounded by the
    default executor's size). This rule's fixture pair measured 35x for 50
    handlers on the same kind of CPU while it was shared with other jobs
    (`aiperf-lint verify --rule AIP502`). A model forward is the same kind
    of blocking call: a 100 ms inference in an `async def` endpoint
    serialises every request.

    Not reported: calls that are awaited (async APIs), calls wrapped in an
    offload helper (`asyncio.to_thread`, `loop.run_in_executor`,
    `run_in_threadpool`, `anyio.to_thread.run_sync`, `asyncify`, local
    `make_async`-style wrappers, lambdas), sync functions nested inside the
    async one, and plain `def` endpoints (FastAPI and Starlette run them in a
    thread pool).

    ## Example
    ```python
    @app.post("/predict")
    async def predict(req: Request):
        time.sleep(0.1)
        return {"label": model(req.x).argmax().item()}
    ```

    ## Use instead
    ```python
    @app.post("/predict")
    async def predict(req: Request):
        await asyncio.sleep(0.1)
        out = await asyncio.to_thread(model, req.x)
        return {"label": out.argmax().item()}
    ```

    ## Fix safety
    Safe for `time.sleep(x)` (or `sleep(x)` imported from `time`) used as a
    statement: it becomes `await asyncio.sleep(x)` and `import asyncio` is
    added. Not offered in modules that import `trio` or `anyio` (their event
    loops need their own sleep). The other calls are reported with the
    rewrite in the message: moving them to a thread changes which thread runs
    them, which a model pinned to one thread or a non-thread-safe client may
    not allow.

    ## References
    - ruff ASYNC251 (`time.sleep` in async function), ASYNC210/ASYNC212
      (blocking HTTP calls), ASYNC220-ASYNC222 (subprocess), ASYNC230 (`open`
      in async functions). aiperf-lint goes further: model inference inside
      async handlers, and offload helpers recognised.
    - Python docs, "Developing with asyncio": https://docs.python.org/3/library/asyncio-dev.html
    - FastAPI, "Concurrency and async / await": https://fastapi.tiangolo.com/async/
    """

    code = "AIP502"
    name = "blocking-call-in-async"
    message = "blocking call inside `async def` stalls the event loop; await an async equivalent or use `asyncio.to_thread`"
    fix_kind = "sometimes"
    triggers = (b"async def",)

    def visit_Call(self, node: cst.Call) -> None:
        frame = self.ctx.current_function()
        if frame is None or not frame.is_async or self._offloaded_or_awaited(node):
            return
        qname = self.ctx.qualified_name(node.func) or ""
        callee = dotted_name(node.func) or call_name(node) or "call"
        module, _, last = qname.rpartition(".")
        if qname == "time.sleep":
            message = _SLEEP_MESSAGE.format(callee=callee, func=frame.name)
            self.report(node, message, self._sleep_fix(node))
        elif (module in {"requests", "httpx"} and last in _HTTP_VERBS) or qname in {
            "urllib.request.urlopen",
            "requests.Session",
        }:
            self.report(node, _HTTP_MESSAGE.format(callee=callee, func=frame.name))
        elif (module == "subprocess" and last in _SUBPROCESS) or self._runs_program(node, qname):
            self.report(node, _SUBPROCESS_MESSAGE.format(callee=callee, func=frame.name))
        elif self._is_file_io(node):
            self.report(node, _FILE_MESSAGE.format(method=call_name(node), func=frame.name))
        elif frame.is_inference_role() and self.ctx.is_model_call(node):
            self.report(node, _MODEL_MESSAGE.format(callee=callee, func=frame.name))

    def visit_For(self, node: cst.For) -> None:
        frame = self.ctx.current_function()
        if frame is None or not frame.is_async or node.asynchronous is not None:
            return
        stream = node.iter
        is_stream_call = (
            isinstance(stream, cst.Call)
            and isinstance(stream.func, cst.Attribute)
            and stream.func.attr.value in _STREAM_METHODS
        )
        if is_stream_call or self.ctx.kind_of(stream) == TOKEN_STREAMER:
            what = dotted_name(stream.func if is_stream_call else stream) or "stream"
            what += "(...)" if is_stream_call else ""
            self.report(stream, _STREAM_MESSAGE.format(what=what, func=frame.name))

    def _runs_program(self, call: cst.Call, qname: str) -> bool:
        """`os.popen`, `sh.ls(...)`, a plumbum command, ffmpeg-python's `.run()`."""
        if qname in _RUNS_PROGRAM or qname.startswith(_RUNS_PROGRAM_MODULES):
            return True
        if qname.startswith("sh.") and qname != "sh.Command":
            return not any(
                arg.keyword is not None and arg.keyword.value in {"_bg", "_async"}
                for arg in call.args
            )
        func = call.func
        return (
            isinstance(func, cst.Attribute)
            and func.attr.value == "run"
            and self._ffmpeg_stream(func.value)
        )

    def _ffmpeg_stream(self, expr: cst.BaseExpression, depth: int = 0) -> bool:
        """An ffmpeg-python stream: a chain of calls rooted at `ffmpeg.*(...)`, or a name bound to one."""
        while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            if (self.ctx.qualified_name(expr.func) or "").startswith("ffmpeg."):
                return True
            expr = expr.func.value
        if isinstance(expr, cst.Name) and depth < 3:
            binding = self.ctx.binding(expr.value)
            if binding is not None and binding.value is not None:
                return self._ffmpeg_stream(binding.value, depth + 1)
        return False

    def _offloaded_or_awaited(self, node: cst.Call) -> bool:
        """Awaited, or inside a lambda / offload helper's arguments within this function."""
        if isinstance(self.ctx.parent(), cst.Await):
            return True
        function = self.ctx.current_function().node
        for ancestor in reversed(self.ctx.ancestors[:-1]):
            if ancestor is function:
                return False
            if isinstance(ancestor, cst.Lambda):
                return True
            if isinstance(ancestor, cst.Call) and self._is_offload(ancestor):
                return True
        return False

    def _is_offload(self, call: cst.Call) -> bool:
        if self.ctx.qualified_name(call.func) in _OFFLOAD_QUALIFIED:
            return True
        name = call_name(call) or ""
        if isinstance(call.func, cst.Attribute) and name in _OFFLOAD_METHODS:
            return True
        return bool(_OFFLOAD_NAME.search(name))

    def _is_file_io(self, node: cst.Call) -> bool:
        if not isinstance(node.func, cst.Attribute) or node.func.attr.value not in _FILE_IO_METHODS:
            return False
        return self.ctx.kind_of(node.func.value) == FILE

    def _sleep_fix(self, node: cst.Call) -> Fix | None:
        """`time.sleep(x)` as a statement -> `await asyncio.sleep(x)`."""
        if not isinstance(self.ctx.parent(), cst.Expr):
            return None
        if any(self.ctx.uses(root) for root in ("trio", "anyio", "curio")):
            return None
        if self.ctx.qualified_name(cst.Name("asyncio")) not in {None, "asyncio"}:
            return None  # `asyncio` bound to something else here
        new_call = node.with_changes(func=cst.Attribute(cst.Name("asyncio"), cst.Name("sleep")))
        return Fix(
            "safe",
            {node: cst.Await(new_call)},
            imports=[ImportSpec("asyncio")],
            description="await asyncio.sleep",
        )


VALID = [
    # awaited sleep, and a blocking call offloaded to a thread
    """
import asyncio, time
async def handler():
    await asyncio.sleep(1)
    await asyncio.to_thread(time.sleep, 1)
""",
    # a plain `def` endpoint: FastAPI runs it in a thread pool
    """
import time, requests
from fastapi import FastAPI
app = FastAPI()
model = None
@app.get("/")
def index():
    time.sleep(0.1)
    requests.get("http://x")
    return model(1)
""",
    # a sync function nested inside the async one (it runs in the executor)
    """
import asyncio, time
async def handler(loop):
    def work():
        time.sleep(1)
        return open("f").read()
    return await loop.run_in_executor(None, work)
""",
    # lambdas and partials given to offload helpers
    """
import asyncio, functools, requests
from starlette.concurrency import run_in_threadpool
import anyio
async def handler(loop, url):
    a = await loop.run_in_executor(None, lambda: requests.get(url))
    b = await run_in_threadpool(functools.partial(requests.get, url))
    c = await anyio.to_thread.run_sync(lambda: requests.post(url))
    return a, b, c
""",
    # model inference offloaded, through asyncio and a project-local wrapper
    """
import asyncio, torch
from app.utils import make_async
model = torch.nn.Linear(4, 2)
@app.post("/predict")
async def predict(x):
    y = await asyncio.to_thread(model, x)
    z = await make_async(lambda: model.generate(x))()
    return await asyncio.get_running_loop().run_in_executor(None, model, x)
""",
    # awaited generate: an async engine's API
    """
import torch
@app.post("/generate")
async def generate(prompt):
    return await engine.generate(prompt)
""",
    # same method names on objects that are not blocking: an async client, a dict
    """
import httpx
async def fetch(url, cache):
    async with httpx.AsyncClient() as client:
        r = await client.get(url)
    return cache.get(url), r
""",
    # a user-defined `sleep` and `run` (not time / subprocess)
    """
def sleep(x):
    return x
async def handler(session):
    sleep(1)
    return session.run(None, {})
""",
    # model-like method names on other objects are methods, not models
    """
import torch
@app.post("/predict")
async def predict(x):
    writer.generator(x)
    return report.classifier(x)
""",
    # model called in a non-handler async helper of a script (no concurrent requests)
    """
import torch
model = torch.nn.Linear(4, 2)
async def main():
    return model(torch.ones(4))
""",
    # async token streams, a sync generator handed to StreamingResponse, a streamer in a thread
    """
import asyncio
from transformers import AsyncTextIteratorStreamer, TextIteratorStreamer
from fastapi.responses import StreamingResponse
@app.post("/stream")
async def stream(req):
    streamer = AsyncTextIteratorStreamer(tok)
    async for text in streamer:
        yield text
    async for chunk in engine.stream_chat(req.prompt):
        yield chunk
@app.post("/chat")
async def chat(req):
    streamer = TextIteratorStreamer(tok)
    def drain():
        return "".join(t for t in streamer)
    def tokens():
        for chunk in model.stream_chat(tok, req.prompt):
            yield chunk
    text = await asyncio.to_thread(drain)
    return StreamingResponse(tokens())
""",
    # ffmpeg-python's non-blocking run_async, `run` on other objects, sh in the background
    """
import ffmpeg, sh
async def convert(src, dst, session, runner):
    process = ffmpeg.input(src).output(dst).run_async()
    session.run(None, {})
    runner.run()
    sh.ffmpeg("-i", src, dst, _bg=True)
    return process
""",
]

INVALID = [
    Invalid(
        """
import time
async def handler():
    time.sleep(0.5)
    return 1
""",
        fixed="""
import time
import asyncio
async def handler():
    await asyncio.sleep(0.5)
    return 1
""",
    ),
    Invalid(
        """
import asyncio
from time import sleep
async def poll(n):
    for _ in range(n):
        sleep(0.1)
""",
        fixed="""
import asyncio
from time import sleep
async def poll(n):
    for _ in range(n):
        await asyncio.sleep(0.1)
""",
    ),
    # HTTP, subprocess, file read: report only
    Invalid(
        """
import requests, subprocess
from urllib.request import urlopen
async def handler(url, path):
    r = requests.get(url)
    subprocess.run(["ls"])
    data = urlopen(url).read()
    with open(path) as f:
        text = f.read()
    return r, data, text
""",
        count=4,
    ),
    # model inference in an async FastAPI endpoint: self.model, generate, pipeline, onnxruntime
    Invalid(
        """
import torch
from transformers import pipeline, AutoModelForCausalLM
import onnxruntime as ort
llm = AutoModelForCausalLM.from_pretrained("gpt2")
classifier = pipeline("sentiment-analysis")
session = ort.InferenceSession("m.onnx")
@app.post("/predict")
async def predict(req):
    ids = llm.generate(req.ids)
    label = classifier(req.text)
    probs = session.run(None, {"x": req.x})
    return ids, label, probs
""",
        count=3,
    ),
    Invalid(
        """
import torch
class Server:
    def __init__(self):
        self.model = torch.jit.load("model.pt")
    async def predict(self, x):
        with torch.no_grad():
            return self.model(x)
""",
    ),
    # other program runners: os.popen, ffmpeg-python (chained, split, ffmpeg.run), sh, plumbum
    Invalid(
        """
import os
import ffmpeg
import sh
from plumbum.cmd import convert
async def handler(src, dst):
    version = os.popen("ffmpeg -version").read()
    ffmpeg.input(src).output(dst, vcodec="libx264").run(quiet=True)
    stream = ffmpeg.input(src).filter("scale", 640, -1).output(dst)
    stream.run()
    ffmpeg.run(stream)
    sh.ls("-l")
    convert(src, dst)
    return version
""",
        count=6,
    ),
    # sync iteration over token streams in async endpoints
    Invalid(
        """
from threading import Thread
from transformers import TextIteratorStreamer
@app.post("/generate")
async def generate(req):
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    Thread(target=model.generate, kwargs={"streamer": streamer}).start()
    text = ""
    for new_text in streamer:
        text += new_text
    return text
@app.websocket("/chat")
async def chat(ws):
    for response, history in model.stream_chat(tokenizer, await ws.receive_text()):
        await ws.send_text(response)
""",
        count=2,
    ),
    # time.sleep inside an expression: reported, no fix
    Invalid(
        """
import time
async def handler():
    return time.sleep(1) or 2
""",
    ),
]
