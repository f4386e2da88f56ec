"""Assertions for checks, with messages a TA would write: what was called, expected, and got.

Every helper raises AssertionError with a student-facing message; checks import them as
`from grader.harness.compare import ...`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy
import torch

RTOL, ATOL = 1e-4, 1e-5


def describe(value: Any) -> dict:
    """Run on the student side by probes: a value plus the autograd facts a check may grade
    (whether it still requires grad or hangs on a graph), since only detached data crosses."""
    if isinstance(value, numpy.generic):  # numpy-style answers: np.float64 is a number too
        return {**describe(value.item()), "type": type(value).__name__}
    if isinstance(value, torch.Tensor):
        return {"type": "tensor", "value": value.detach().clone(), "requires_grad": value.requires_grad,
                "attached": value.grad_fn is not None}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"type": type(value).__name__, "value": value, "requires_grad": False, "attached": False}
    return {"type": type(value).__name__, "value": repr(value)[:200], "requires_grad": False, "attached": False}


def _unwrap(got: Any) -> tuple[Any, str | None]:
    if isinstance(got, dict) and set(got) >= {"type", "value", "attached"}:
        return got["value"], got["type"]
    return got, None


def call(function: str, **inputs: Any) -> str:
    """`sgd_step(a=1.0, b=4.0, ...)`, with tensors shown by shape for readability."""
    return f"{function}({', '.join(f'{k}={show(v)}' for k, v in inputs.items())})"


def show(value: Any, limit: int = 8) -> str:
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return f"tensor({value.item():.6g})"
        if value.numel() <= limit:
            items = ", ".join(f"{v:.6g}" for v in value.flatten().tolist()) if value.is_floating_point() else \
                ", ".join(str(v) for v in value.flatten().tolist())
            return f"tensor([{items}]{'' if value.dim() == 1 else ', shape ' + str(list(value.shape))})"
        return f"tensor of shape {list(value.shape)}, dtype {str(value.dtype).replace('torch.', '')}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and len(value) > limit:
        return f"{type(value).__name__} of {len(value)} items"
    return repr(value)


def scalar(got: Any, what: str) -> float:
    """A Python number or a 0-d tensor, as float; anything else fails with a clear message."""
    got, kind = _unwrap(got)
    if kind is not None and kind not in ("tensor", "int", "float") and not isinstance(got, (int, float)):
        raise AssertionError(f"{what} returned a {kind} ({got}); expected a number or a 0-d tensor")
    if isinstance(got, bool):
        raise AssertionError(f"{what} returned a bool ({got}); expected a number")
    if isinstance(got, (int, float)):
        return float(got)
    if isinstance(got, torch.Tensor):
        if got.dim() != 0:
            raise AssertionError(f"{what} returned a tensor of shape {list(got.shape)}; expected a number or a 0-d tensor")
        if not (got.is_floating_point() or got.dtype in (torch.int32, torch.int64)):
            raise AssertionError(f"{what} returned a {got.dtype} tensor; expected a float")
        return float(got.item())
    raise AssertionError(f"{what} returned {type(got).__name__} {show(got)}; expected a number or a 0-d tensor")


def assert_scalar_close(got: Any, want: Any, what: str, rtol: float = RTOL, atol: float = ATOL) -> None:
    value, expected = scalar(got, what), scalar(want, "the reference")
    if math.isnan(value) or math.isinf(value):
        raise AssertionError(f"{what} returned {value}; expected {expected:.6g} (did the loop diverge?)")
    if not math.isclose(value, expected, rel_tol=rtol, abs_tol=atol):
        raise AssertionError(f"{what} returned {value:.6g}; expected {expected:.6g}")


def tensor(got: Any, what: str) -> torch.Tensor:
    got, kind = _unwrap(got)
    if kind is not None and kind != "tensor":
        raise AssertionError(f"{what} returned a {kind} ({got}); expected a tensor")
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what} returned {type(got).__name__} {show(got)}; expected a tensor")
    return got


def assert_tensor_close(got: Any, want: torch.Tensor, what: str, rtol: float = RTOL, atol: float = ATOL,
                        dtype: torch.dtype | None = None, broadcast: bool = False) -> None:
    """Same shape (or broadcastable to it, when allowed), optional exact dtype, values within tolerance."""
    got, _ = _unwrap(got)
    if broadcast and isinstance(got, (int, float)) and not isinstance(got, bool):
        got = torch.tensor(float(got))
    got = tensor(got, what)
    if dtype is not None and got.dtype != dtype:
        raise AssertionError(f"{what} returned a {str(got.dtype).replace('torch.', '')} tensor; "
                             f"expected {str(dtype).replace('torch.', '')}")
    if broadcast:
        try:
            got = torch.broadcast_to(got, want.shape)
        except RuntimeError:
            raise AssertionError(f"{what} returned shape {list(got.shape)}, which does not broadcast to "
                                 f"{list(want.shape)}") from None
    if got.shape != want.shape:
        raise AssertionError(f"{what} returned shape {list(got.shape)}; expected {list(want.shape)}")
    if not got.is_floating_point() and want.is_floating_point():
        got = got.to(want.dtype)
    if not torch.isfinite(got).all() and torch.isfinite(want).all():
        raise AssertionError(f"{what} returned non-finite values ({show(got)}); expected {show(want)}")
    if not torch.allclose(got.to(want.dtype), want, rtol=rtol, atol=atol):
        diff = (got.to(want.dtype) - want).abs()
        worst = int(diff.flatten().argmax())
        raise AssertionError(
            f"{what} returned {show(got)}; expected {show(want)} (largest difference at flat index {worst}: "
            f"got {got.flatten()[worst].item():.6g}, expected {want.flatten()[worst].item():.6g})"
        )


def assert_not_attached(described: dict, what: str) -> None:
    """The contract's 'not attached' (grad_fn is None), on a value the probe passed through `describe`."""
    if described["attached"]:
        raise AssertionError(f"{what} returned a tensor still attached to the autograd graph; "
                             "detach it (.detach()) or compute it under torch.no_grad()")


def assert_no_grad(described: dict, what: str) -> None:
    """Stricter: the value must not require grad at all (a float, `.item()` or `.detach()`)."""
    if described["requires_grad"]:
        raise AssertionError(f"{what} returned a tensor that requires grad (the optimised leaf itself?); "
                             "return b.item() or b.detach()")
