"""The student side: run the submission's cells, then answer probe calls with data only.

Everything here runs in the student process, which may be hostile from the moment the first
cell runs. It never sees the checks or the reference; all it can do is send back values.
"""

from __future__ import annotations

import builtins
import importlib.util
import linecache
import random
import sys
import traceback
import types
from pathlib import Path
from typing import Any

from grader.harness.protocol import Channel

SUBMISSION_FILES = ("<submission>", "<cell ")


def seed_everything(seed: int) -> None:
    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed % 2**32)
    # The CPU generator alone: torch.manual_seed also queues lazy CUDA/XPU seeding, formatting a
    # stack trace each time (1.6 ms a call, over a third of a warm grade), for devices we lack.
    torch.default_generator.manual_seed(seed)


def load_module(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cell_name(number: int) -> str:
    return "<submission>" if number == 0 else f"<cell {number}>"


def _submission_frames(tb) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(tb) if f.filename.startswith(SUBMISSION_FILES)]


def _where(frame: traceback.FrameSummary) -> str:
    place = "" if frame.filename == "<submission>" else frame.filename.strip("<>") + ", "
    return f"{place}line {frame.lineno}, in {frame.name}"


def describe_exception(exc: BaseException) -> tuple[str, int | None]:
    """A one-paragraph account of an exception, pointing at the submission's own lines."""
    frames = _submission_frames(exc.__traceback__)
    message = f"{type(exc).__name__}: {exc}".rstrip(": ")
    if not frames:
        return message, None
    lines = [message] + [f"  at {_where(f)}: {f.line}" for f in frames[-3:]]
    return "\n".join(lines), frames[-1].lineno


def execute_cells(cells: list[dict], module_name: str) -> tuple[types.ModuleType, list[dict]]:
    """Run every cell in one namespace; a cell that fails is recorded and skipped."""
    module = types.ModuleType(module_name)
    module.__dict__["__builtins__"] = builtins
    sys.modules[module_name] = module
    notes = []
    for cell in cells:
        filename = _cell_name(cell["number"])
        source = cell["source"]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        where = f"cell {cell['number']}" if cell["number"] else "the submission"
        try:
            code = compile(source, filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            notes.append({"kind": "syntax_error", "cell": cell["number"] or None,
                          "line": getattr(exc, "lineno", None),
                          "message": f"{where} does not compile ({type(exc).__name__}: {exc}); it was skipped"})
            continue
        try:
            exec(code, module.__dict__)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from a cell are the student's too
            text, line = describe_exception(exc)
            notes.append({"kind": "cell_error", "cell": cell["number"] or None, "line": line,
                          "message": f"{where} raised {text}" + ("; the remaining cells still ran" if cell["number"] else "")})
    return module, notes


def _plain(value: Any) -> Any:
    """Check a probe's result is data a weights-only load accepts; raise TypeError naming what is not."""
    import numpy
    import torch

    if value is None or isinstance(value, (bool, int, float, complex, str)):
        return value
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, numpy.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, torch.Tensor):
        if type(value) is not torch.Tensor and not isinstance(value, torch.nn.Parameter):
            raise TypeError(f"a tensor subclass {type(value).__name__} is not plain data")
        return value.detach().clone() if value.requires_grad or value.grad_fn is not None else value
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):  # named tuples and other subclasses cross as plain tuples
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    raise TypeError(f"a {type(value).__name__} is not plain data (tensors, numbers, strings, lists, dicts)")


def serve(channel: Channel, module: types.ModuleType, probes: types.ModuleType) -> None:
    """Answer requests until the grader closes the channel."""
    while True:
        request = channel.recv_data()
        if request["op"] == "put_file":
            Path(request["name"]).write_bytes(request["data"].numpy().tobytes())
            channel.send_data({"ok": True, "value": None})
            continue
        seed_everything(request["seed"])
        probe = getattr(probes, request["probe"])
        try:
            value = _plain(probe(module, **request["inputs"]))
            reply = {"ok": True, "value": value}
        except BaseException as exc:
            text, _ = describe_exception(exc)
            reply = {"ok": False, "error": text, "type": type(exc).__name__}
        try:
            channel.send_data(reply)
        except Exception as exc:
            channel.send_data({"ok": False, "error": f"the result could not be sent back: {exc}", "type": "TypeError"})
