"""AIP201 dataloader-no-workers."""

from __future__ import annotations

import libcst as cst

from aiperf_lint.dataloaders import (
    TENSOR_DATASET,
    LoaderCall,
    has_item_work,
    module_int_constant,
    shards_by_worker,
    with_keyword_args,
)
from aiperf_lint.model import Fix, ImportSpec
from aiperf_lint.rule import Invalid, Rule
from aiperf_lint.semantic import ITERABLE_DATASET, call_name, keyword_arg

# torchvision datasets that open and decode a file for every item.
_FILE_DATASETS = frozenset({"ImageFolder", "DatasetFolder", "VOCDetection", "VOCSegmentation"})
_WORKERS = "min(8, os.cpu_count() or 1)"


class DataLoaderNoWorkers(Rule):
    """
    ## What it does
    Finds DataLoaders that load every item in the main process while the dataset does per-item work.
    That is: no `num_workers` (or `num_workers=0`), and a `Dataset` defined in the
    module whose `__getitem__` (or a method it calls) opens, reads, decodes,
    tokenizes or transforms each item, or a torchvision file/transform dataset.

    ## Why is this bad
    With `num_workers=0` every item is loaded in the training process, one after
    the other, while the model waits. Worker processes prepare the next batches
    in parallel. The verifier's CPU figures (`../shared/notes/speedups-cpu.md`,
    pair 8: 256 items of about 1 ms of work, batch 16, 3 epochs, 2 cores): 2
    workers ran 1.39x faster for CPU-bound items and 1.63x for I/O-bound items;
    with `persistent_workers=True` as well, 1.55x and 1.83x. The gain is bounded
    by the core count for CPU work.

    Precision: this check is the noisiest of its kind on real code, so it only
    reports when per-item work is visible. Not reported:
    - `num_workers` taken from a variable, argument or config (`args.workers`),
      or `**kwargs` that may carry it; a module-level constant (`NUM_WORKERS = 0`)
      counts as the literal;
    - a `TensorDataset`, or a custom dataset that only indexes in-memory data
      (nothing for workers to parallelise; workers would add IPC cost);
    - a dataset whose class is not visible here (imported, passed in), except
      torchvision datasets that decode files or apply a `transform`;
    - a loader only used to draw one batch (`next(iter(loader))`);
    - an `IterableDataset` that does not shard its stream with
      `torch.utils.data.get_worker_info()`: every worker would replay the whole
      stream, duplicating the data.

    ## Example
    ```python
    loader = DataLoader(ImageDataset(paths), batch_size=32, shuffle=True)
    ```

    ## Use instead
    ```python
    loader = DataLoader(
        ImageDataset(paths),
        batch_size=32,
        shuffle=True,
        num_workers=min(8, os.cpu_count() or 1),
        persistent_workers=True,
    )
    ```

    ## Fix safety
    Unsafe. The fix sets `num_workers=min(8, os.cpu_count() or 1)` (adding
    `import os`) and `persistent_workers=True` when absent. Workers are separate
    processes: the dataset must be picklable under the `spawn` start method
    (macOS, Windows), a script needs an `if __name__ == "__main__":` guard there,
    per-item randomness must be seeded per worker, each worker holds a copy of
    the dataset (see AIP204), and `persistent_workers=True` keeps the workers
    and the dataset copies alive between epochs, so changes the main process
    makes to the dataset after the first epoch are not seen by the workers.
    The fix is never offered for an `IterableDataset` that does not shard by worker.

    ## References
    - PyTorch, "Single- and Multi-process Data Loading": https://pytorch.org/docs/stable/data.html#single-and-multi-process-data-loading
    - PyTorch performance tuning guide, "Enable async data loading": https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html
    - No ruff rule covers this.
    """

    code = "AIP201"
    name = "dataloader-no-workers"
    message = (
        "DataLoader loads every item in the main process (`num_workers` is {state}) while its "
        "dataset does per-item work; set `num_workers=` (e.g. `min(8, os.cpu_count() or 1)`) "
        "and `persistent_workers=True`"
    )
    fix_kind = "unsafe"
    triggers = (b"DataLoader",)

    def visit_Call(self, node: cst.Call) -> None:
        loader = self.ctx.loader_call(node)
        if loader is None or loader.has_star_args or _too_positional(node):
            return
        workers = loader.argument("num_workers")
        if workers is not None and module_int_constant(self.ctx, workers) != 0:
            return
        if not self._dataset_does_item_work(loader) or self._draws_one_batch(loader):
            return
        state = "missing" if workers is None else "0"
        self.report(node, self.message.format(state=state), _fix(node))

    def _dataset_does_item_work(self, loader: LoaderCall) -> bool:
        if loader.dataset_qualname == TENSOR_DATASET:
            return False
        cls = loader.dataset_class
        if cls is not None:
            if cls.kind == ITERABLE_DATASET and not (
                shards_by_worker(self.ctx, cls) or keyword_arg(loader.call, "worker_init_fn")
            ):
                return False
            return has_item_work(self.ctx, cls)
        qualname = loader.dataset_qualname or ""
        if qualname.startswith("torchvision.datasets."):
            source = loader.dataset_source
            uses_transform = isinstance(source, cst.Call) and keyword_arg(source, "transform")
            return qualname.rsplit(".", 1)[-1] in _FILE_DATASETS or bool(uses_transform)
        return False  # unknown dataset: no evidence of per-item work

    def _draws_one_batch(self, loader: LoaderCall) -> bool:
        parent, grandparent = self.ctx.parent(2), self.ctx.parent(4)
        if (
            isinstance(parent, cst.Call)
            and call_name(parent) == "iter"
            and isinstance(grandparent, cst.Call)
            and call_name(grandparent) == "next"
        ):
            return True  # next(iter(DataLoader(...)))
        return self.ctx.pipeline().used_for_one_batch_only(loader)


def _too_positional(call: cst.Call) -> bool:
    """num_workers is DataLoader's 6th positional parameter: past that, do not guess."""
    return sum(1 for a in call.args if a.keyword is None and not a.star) > 5


def _fix(call: cst.Call) -> Fix:
    updates = {"num_workers": cst.parse_expression(_WORKERS)}
    if keyword_arg(call, "persistent_workers") is None:
        updates["persistent_workers"] = cst.Name("True")
    return Fix(
        "unsafe",
        {call: with_keyword_args(call, updates)},
        imports=[ImportSpec("os")],
        description="load items in worker processes",
    )


_DATASET = """
class ImageDataset(Dataset):
    def __init__(self, paths, transform=None):
        self.paths = paths
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        image = Image.open(self.paths[i]).convert("RGB")
        return self.transform(image)
"""

VALID = [
    # num_workers from arguments / config / a parameter: unknown
    "from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
    + _DATASET
    + "loader = DataLoader(ImageDataset(paths), batch_size=32, num_workers=args.workers)\n",
    "from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
    + _DATASET
    + "def make(paths, workers):\n    return DataLoader(ImageDataset(paths), num_workers=workers)\n",
    # **kwargs may carry num_workers
    "from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
    + _DATASET
    + "loader = DataLoader(ImageDataset(paths), **loader_kwargs)\n",
    # workers already set (literal and module constant)
    "from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
    + _DATASET
    + "NUM_WORKERS = 4\nloader = DataLoader(ImageDataset(paths), num_workers=NUM_WORKERS)\n",
    # TensorDataset over in-memory tensors: nothing to parallelise
    """
import torch
from torch.utils.data import DataLoader, TensorDataset
x, y = torch.randn(1000, 8), torch.randint(0, 2, (1000,))
ds = TensorDataset(x, y)
loader = DataLoader(ds, batch_size=64, shuffle=True)
for epoch in range(10):
    for xb, yb in loader:
        pass
""",
    # custom dataset that only indexes in-memory tensors
    """
from torch.utils.data import DataLoader, Dataset
class Pairs(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return self.x[i], self.y[i]
loader = DataLoader(Pairs(x, y), batch_size=64)
""",
    # unknown dataset (passed in / imported): no evidence
    """
from torch.utils.data import DataLoader
from mypkg.data import SpeechDataset
def loaders(ds):
    return DataLoader(ds, batch_size=8), DataLoader(SpeechDataset("x"), batch_size=8)
""",
    # a loader used once to show one batch
    "from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
    + _DATASET
    + "preview = DataLoader(ImageDataset(paths), batch_size=16, shuffle=True)\n"
    + "images = next(iter(preview))\nshow(images)\n",
    "from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
    + _DATASET
    + "batch = next(iter(DataLoader(ImageDataset(paths), batch_size=16)))\n",
    # IterableDataset without worker sharding: workers would duplicate the stream
    """
import json
from torch.utils.data import DataLoader, IterableDataset
class Lines(IterableDataset):
    def __init__(self, path):
        self.path = path
    def __iter__(self):
        with open(self.path) as f:
            for line in f:
                yield json.loads(line)
loader = DataLoader(Lines("data.jsonl"), batch_size=32)
""",
    # a DataLoader-named class that is not torch's
    """
from mylib import DataLoader
class ImageDataset:
    def __getitem__(self, i):
        return Image.open(self.paths[i])
loader = DataLoader(ImageDataset(), batch_size=4)
""",
]

INVALID = [
    Invalid(
        "from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
        + _DATASET
        + "\nloader = DataLoader(ImageDataset(paths, tf), batch_size=32, shuffle=True)\n"
        + "for epoch in range(10):\n    for batch in loader:\n        step(batch)\n",
        fixed="from torch.utils.data import DataLoader, Dataset\nfrom PIL import Image\n"
        "import os\n"
        + _DATASET
        + "\nloader = DataLoader(ImageDataset(paths, tf), batch_size=32, shuffle=True, "
        "num_workers=min(8, os.cpu_count() or 1), persistent_workers=True)\n"
        + "for epoch in range(10):\n    for batch in loader:\n        step(batch)\n",
        unsafe=True,
    ),
    # `import torch.utils.data as tud`, explicit num_workers=0, multi-line call
    Invalid(
        """
import os
import numpy as np
import torch.utils.data as tud

class Spectra(tud.Dataset):
    def __getitem__(self, i):
        return self.augment(np.load(self.files[i]))

train = tud.DataLoader(
    Spectra(),
    batch_size=8,
    num_workers=0,
)
""",
        fixed="""
import os
import numpy as np
import torch.utils.data as tud

class Spectra(tud.Dataset):
    def __getitem__(self, i):
        return self.augment(np.load(self.files[i]))

train = tud.DataLoader(
    Spectra(),
    batch_size=8,
    num_workers=min(8, os.cpu_count() or 1),
    persistent_workers=True,
)
""",
        unsafe=True,
    ),
    # fully qualified `torch.utils.data.DataLoader`, module constant NUM_WORKERS = 0
    Invalid(
        """
import torch
import cv2
NUM_WORKERS = 0
class Frames(torch.utils.data.Dataset):
    def __getitem__(self, i):
        return cv2.imread(self.paths[i])
def build(paths):
    return torch.utils.data.DataLoader(Frames(), batch_size=4, num_workers=NUM_WORKERS)
"""
    ),
    # an alias, a subclass of a local Dataset, a helper method doing the work
    Invalid(
        """
from torch.utils.data import DataLoader as DL, Dataset
class Base(Dataset):
    def load_item(self, i):
        return read_audio(self.files[i])
class Speech(Base):
    def __getitem__(self, i):
        return self.load_item(i)
ds = Speech()
dl = DL(ds, batch_size=8)
for x in dl:
    pass
"""
    ),
    # torchvision ImageFolder decodes a file per item
    Invalid(
        """
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
train_set = datasets.ImageFolder("data/train", transform=transforms.ToTensor())
loader = DataLoader(train_set, batch_size=64, shuffle=True)
"""
    ),
    # an IterableDataset that shards by worker
    Invalid(
        """
import json
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
class Shards(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        for path in self.paths[info.id :: info.num_workers] if info else self.paths:
            with open(path) as f:
                yield from (json.loads(line) for line in f)
loader = DataLoader(Shards(), batch_size=32)
"""
    ),
]
