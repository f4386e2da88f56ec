"""Checks for `manual-gradients`: hand-derived gradients compared with the reference on random inputs.

The probes call everything but LegendrePolynomial3 under torch.no_grad() (the contract: no autograd anywhere).
"""

import math

import torch

from grader.harness.clients import StudentError
from grader.harness.compare import (assert_not_attached, assert_scalar_close, assert_tensor_close, call, scalar,
                                    show, tensor)

LECTURE_T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
LECTURE_T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]


def _f32(values):
    return torch.tensor(values, dtype=torch.float32)


def _thermometer(rng):
    """Random readings, already scaled like the lecture's t_un = 0.1 * t_u, and noisy Celsius targets."""
    n = int(rng.integers(6, 40))
    t_u = rng.uniform(2.0, 9.0, n)
    t_c = rng.uniform(3.0, 7.0) * t_u + rng.uniform(-25.0, -10.0) + rng.normal(0.0, 1.5, n)
    return _f32(t_u), _f32(t_c)


def _wb(rng):
    w, b = rng.uniform(-3.0, 8.0), rng.uniform(-20.0, 5.0)
    return _f32(round(float(w), 3)), _f32(round(float(b), 3))


def _run(student, probe, what=None, **inputs):
    """The student's result; when their code raises, say what was called (and why backward() cannot work)."""
    try:
        return student.run(probe, **inputs)
    except StudentError as exc:
        hint = ("\nHint: the checks call it under torch.no_grad(), so backward() cannot work here: derive the "
                "gradient by hand (chain rule)") if "does not require grad" in str(exc) else ""
        raise AssertionError(f"{what or call(probe, **inputs)} raised {exc}{hint}") from None


def _matches(got, value):
    got = got["value"] if isinstance(got, dict) else got
    try:
        return bool(torch.allclose(torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(value, dtype=torch.float64),
                                   rtol=1e-3, atol=1e-4))
    except (TypeError, ValueError, RuntimeError):
        return False


def _compare(got, want, what, hints=(), **tolerance):
    """got must match want (a tensor with dimensions, else a number); on failure name the classic mistake it matches."""
    want = want["value"] if isinstance(want, dict) else want
    close = assert_tensor_close if isinstance(want, torch.Tensor) and want.dim() else assert_scalar_close
    try:
        close(got, want, what, **tolerance)
    except AssertionError as exc:
        hint = next((h for mistake, h in hints if _matches(got, mistake)), None)
        if hint is None:
            raise
        raise AssertionError(f"{exc}\nHint: {hint}") from None


def _same_as_reference(student, reference, probe, hints=(), **inputs):
    _compare(_run(student, probe, **inputs), reference.run(probe, **inputs), call(probe, **inputs), hints)


def _mse(t_u, t_c, w, b):
    return ((w * t_u + b - t_c) ** 2).mean()


def _loss_hints(t_p, t_c):
    return [(((t_p - t_c) ** 2).sum(), "that is the sum of the squared differences; the loss is their mean")]


def test_model_random(student, reference, rng):
    for _ in range(3):
        t_u, _ = _thermometer(rng)
        w, b = _wb(rng)
        _same_as_reference(student, reference, "model", t_u=t_u, w=w, b=b)


def test_loss_fn_lecture_values(student, reference):
    t_p, t_c = _f32(LECTURE_T_U), _f32(LECTURE_T_C)  # the lecture's first prediction, w = 1 and b = 0
    _same_as_reference(student, reference, "loss_fn", _loss_hints(t_p, t_c), t_p=t_p, t_c=t_c)


def test_loss_fn_random(student, reference, rng):
    for _ in range(3):
        t_u, t_c = _thermometer(rng)
        t_p = t_u * float(rng.uniform(1, 6)) - float(rng.uniform(0, 20))
        _same_as_reference(student, reference, "loss_fn", _loss_hints(t_p, t_c), t_p=t_p, t_c=t_c)


def test_dloss_fn(student, reference, rng):
    for _ in range(3):
        t_u, t_c = _thermometer(rng)
        t_p = t_u * float(rng.uniform(1, 6)) - float(rng.uniform(0, 20))
        hints = [(2 * (t_p - t_c), "you dropped the 1 / t_p.size(0) of the mean"),
                 ((t_p - t_c) / t_p.size(0), "d/dx of x**2 is 2 * x: you dropped the 2")]
        _same_as_reference(student, reference, "dloss_fn", hints, t_p=t_p, t_c=t_c)


def test_dmodel_dw(student, reference, rng):
    t_u, _ = _thermometer(rng)
    w, b = _wb(rng)
    _same_as_reference(student, reference, "dmodel_dw", [(w.expand_as(t_u), "that is dmodel/dt_u; the derivative "
                                                          "of w * t_u + b with respect to w is t_u")], t_u=t_u, w=w, b=b)


def test_dmodel_db(student, reference, rng):
    t_u, _ = _thermometer(rng)
    w, b = _wb(rng)
    inputs = dict(t_u=t_u, w=w, b=b)
    want = torch.broadcast_to(torch.as_tensor(scalar(reference.run("dmodel_db", **inputs), "the reference")), t_u.shape)
    assert_tensor_close(_run(student, "dmodel_db", **inputs), want, call("dmodel_db", **inputs), broadcast=True)


def _check_grad_fn(student, reference, t_u, t_c, w, b):
    t_p = w * t_u + b
    _same_as_reference(student, reference, "grad_fn", t_u=t_u, t_c=t_c, t_p=t_p, w=w, b=b)


def test_grad_fn_lecture_data(student, reference, rng):
    t_u, t_c = _f32(LECTURE_T_U), _f32(LECTURE_T_C)
    _check_grad_fn(student, reference, t_u, t_c, _f32(1.0), _f32(0.0))
    _check_grad_fn(student, reference, 0.1 * t_u, t_c, *_wb(rng))


def test_grad_fn_random(student, reference, rng):
    for _ in range(3):
        _check_grad_fn(student, reference, *_thermometer(rng), *_wb(rng))


def _check_training_loop(student, reference, n_epochs, learning_rate, params, t_u, t_c):
    inputs = dict(n_epochs=n_epochs, learning_rate=learning_rate, params=params, t_u=t_u, t_c=t_c)
    what = call("training_loop", **inputs)
    got = _run(student, "training_loop", **inputs)
    if tensor(got, what).dtype == torch.float64:
        raise AssertionError(f"{what} returned a float64 tensor; expected float32 like the params passed in.\n"
                             "Hint: float32 params minus a float64 gradient become float64: keep grad_fn's result "
                             "float32 (no numpy float64 arrays or dtype=torch.double)")
    hints = [(reference.run("training_loop", **{**inputs, "n_epochs": n}), f"that is the result after {n} epochs, "
              f"not {n_epochs}: run exactly n_epochs updates") for n in (n_epochs - 1, n_epochs + 1)]
    _compare(got, reference.run("training_loop", **inputs), what, hints, dtype=torch.float32)
    assert_not_attached(got, what)


def test_training_loop_lecture_data(student, reference, rng):
    t_un, t_c = 0.1 * _f32(LECTURE_T_U), _f32(LECTURE_T_C)
    _check_training_loop(student, reference, int(rng.integers(50, 1500)), 1e-2, _f32([1.0, 0.0]), t_un, t_c)


def test_training_loop_random(student, reference, rng):
    for _ in range(2):
        params = torch.stack(_wb(rng))
        learning_rate = round(float(rng.uniform(0.002, 0.012)), 4)
        _check_training_loop(student, reference, int(rng.integers(20, 600)), learning_rate, params, *_thermometer(rng))


def test_finite_difference_w(student, reference, rng):
    for _ in range(3):
        t_u, t_c = _thermometer(rng)
        w, b = _wb(rng)
        delta = round(float(rng.uniform(0.05, 0.5)), 3)
        one_sided = (_mse(t_u, t_c, w + delta, b) - _mse(t_u, t_c, w, b)) / delta
        central = (_mse(t_u, t_c, w + delta, b) - _mse(t_u, t_c, w - delta, b)) / (2 * delta)
        hints = [(one_sided, "that is the one-sided difference (L(w + delta) - L(w)) / delta; use the central "
                             "difference (L(w + delta) - L(w - delta)) / (2 * delta)"),
                 (2 * central, "divide by 2 * delta: the two points are 2 * delta apart")]
        _same_as_reference(student, reference, "finite_difference_w", hints, t_u=t_u, t_c=t_c, w=w, b=b, delta=delta)


def _check_poly_grads(student, reference, rng, x, y):
    a, b, c, d = (round(float(v), 4) for v in rng.normal(0.0, 1.0, 4))
    inputs = dict(x=x, y=y, a=a, b=b, c=c, d=d)
    what = call("poly_grads", **inputs)
    got, want = _run(student, "poly_grads", **inputs), reference.run("poly_grads", **inputs)
    if not (isinstance(got, list) and len(got) == 4):
        raise AssertionError(f"{what} returned {show(got['value'] if isinstance(got, dict) else got)}; "
                             "expected a tuple (dL/da, dL/db, dL/dc, dL/dd)")
    for name, g, w in zip(("dL/da", "dL/db", "dL/dc", "dL/dd"), got, want):
        w = scalar(w, "the reference")
        hints = [(w / len(x), "L is the sum of squared errors here (seed 004), not the mean"),
                 (w / 2, "d/dy_pred of (y_pred - y)**2 is 2 * (y_pred - y): you dropped the 2")]
        _compare(g, w, f"{name} of {what}", hints, rtol=1e-6)


def test_poly_grads_lecture_setup(student, reference, rng):
    x = torch.linspace(-math.pi, math.pi, 2000, dtype=torch.float64)
    _check_poly_grads(student, reference, rng, x, torch.sin(x))


def test_poly_grads_random(student, reference, rng):
    for _ in range(2):
        x = torch.tensor(sorted(rng.uniform(-3.0, 3.0, int(rng.integers(20, 500)))), dtype=torch.float64)
        y = torch.tensor(rng.normal(0.0, 1.0, 4), dtype=torch.float64) @ torch.stack([x ** k for k in range(4)])
        _check_poly_grads(student, reference, rng, x, y + torch.tensor(rng.normal(0.0, 0.1, len(x))))


def test_legendre_gradcheck(student, rng):
    x = torch.tensor(rng.uniform(-1.5, 1.5, int(rng.integers(3, 9))), dtype=torch.float64)
    got = _run(student, "legendre_gradcheck", "LegendrePolynomial3.apply(x) with float64 x", x=x)
    assert got["custom_backward"], (
        f"LegendrePolynomial3.apply(x) did not go through a custom autograd Function (its grad_fn is "
        f"{got['grad_fn']}); subclass torch.autograd.Function with static forward(ctx, input) and backward(ctx, grad_output)")
    assert not got["problem"], (
        f"torch.autograd.gradcheck(LegendrePolynomial3.apply, (x,)) with float64 x = {show(x)} failed: your backward "
        f"does not match the derivative of your forward.\n{got['problem']}\n"
        "Hint: backward must return grad_output * 1.5 * (5 * input**2 - 1) (chain rule: multiply by grad_output)")


def test_legendre_matches_closed_form(student, rng):
    n = int(rng.integers(5, 50))
    x, upstream = _f32(rng.uniform(-2.0, 2.0, n)), _f32(rng.normal(0.0, 1.0, n))
    got = _run(student, "legendre_float32", "LegendrePolynomial3.apply(x).backward(g) with float32 x", x=x,
               upstream=upstream)
    leaf = x.clone().requires_grad_()
    closed_form = 0.5 * (5 * leaf ** 3 - 3 * leaf)
    closed_form.backward(upstream)
    assert_tensor_close(got["forward"], closed_form.detach(), f"LegendrePolynomial3.apply(x) with x = {show(x)}")
    _compare(got["grad"], leaf.grad, f"x.grad after LegendrePolynomial3.apply(x).backward(g) with x = {show(x)}, "
             f"g = {show(upstream)}", [(1.5 * (5 * x ** 2 - 1), "backward must multiply the local derivative by "
                                        "grad_output (chain rule)")])
