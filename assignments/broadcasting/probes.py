"""Probes for `broadcasting`: run in the student process as probe(submission, **inputs)."""

import contextlib
import time

import numpy
import torch
import torch._refs

from grader.harness.compare import describe

# The contract disables torch's and numpy's broadcasting helpers while broadcast_shape runs.
HELPERS = [(torch, "broadcast_shapes"), (torch, "broadcast_tensors"), (torch, "broadcast_to"),
           (torch.functional, "broadcast_shapes"), (torch.functional, "broadcast_tensors"),
           (torch._refs, "_broadcast_shapes"), (numpy, "broadcast_shapes"), (numpy, "broadcast"),
           (numpy, "broadcast_to"), (numpy, "broadcast_arrays")]


@contextlib.contextmanager
def _helpers_disabled(submission):
    """Replace the helpers (and the submission's own names bound to them) with functions that raise."""
    used = []
    names = {}
    for module, attr in HELPERS:
        names.setdefault(id(getattr(module, attr)), f"{module.__name__}.{attr}")
    targets = HELPERS + [(submission, name) for name, value in vars(submission).items() if id(value) in names]
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr in targets]

    def blocker(name):
        def blocked(*args, **kwargs):
            used.append(name)
            raise RuntimeError(f"{name} is disabled in this exercise: apply the broadcasting rules yourself")
        return blocked

    for owner, attr, original in saved:
        setattr(owner, attr, blocker(names[id(original)]))
    try:
        yield used
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)


def broadcast_shape(submission, shape_a, shape_b, kind="tuple"):
    """The result (type and dims) or the exception, and which disabled helpers were called."""
    convert = {"tuple": tuple, "list": list, "size": torch.Size}[kind]
    with _helpers_disabled(submission) as used:
        try:
            value = submission.broadcast_shape(convert(shape_a), convert(shape_b))
        except Exception as exc:
            return {"raised": type(exc).__name__, "value_error": isinstance(exc, ValueError),
                    "message": str(exc)[:300], "used": used}
    return {"raised": None, "type": type(value).__name__, "is_tuple": isinstance(value, tuple), "dims": _dims(value),
            "used": used}


def _dims(shape):
    """A shape as a list of its dims (non-ints shown by repr), or its repr when it is not a sequence."""
    if isinstance(shape, (tuple, list)):  # torch.Size is a tuple
        return [d if type(d) is int else repr(d)[:50] for d in shape]
    return repr(shape)[:200]


def lecture_shapes(submission):
    shapes = submission.lecture_shapes()
    return [_dims(s) for s in shapes] if isinstance(shapes, (tuple, list)) else repr(shapes)[:200]


def center(submission, x):
    return describe(submission.center(x))


def pairwise_sq_dists(submission, x, y):
    return describe(submission.pairwise_sq_dists(x, y))


def outer_affine(submission, t_u, w, b):
    return describe(submission.outer_affine(t_u, w, b))


def _large_inputs(function, sizes):
    if function == "center":
        return (torch.randn(sizes["n"], sizes["d"]),)
    if function == "pairwise_sq_dists":
        return torch.randn(sizes["n"], sizes["d"]), torch.randn(sizes["m"], sizes["d"])
    return torch.randn(sizes["n"]), torch.randn(sizes["p"]), torch.randn(sizes["q"])


def timed(submission, function, sizes, repeats=5, budget=0.3):
    """Best wall time (seconds) of `function` on random inputs of these sizes, on one thread; stops early when slow."""
    fn, args = getattr(submission, function), _large_inputs(function, sizes)
    best, spent = float("inf"), 0.0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same on both sides, and no waiting on a busy second core
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            elapsed = time.perf_counter() - start
            best, spent = min(best, elapsed), spent + elapsed
            if spent > budget:
                break
    finally:
        torch.set_num_threads(threads)
    return best
