"""Probes for `manual-gradients`: run in the student process as probe(submission, **inputs).

Everything except LegendrePolynomial3 is called under torch.no_grad(): the gradients of this
assignment are computed by hand, so code that needs backward() fails here.
"""

import numbers

import torch
from torch.autograd.function import BackwardCFunction
from torch.autograd.gradcheck import GradcheckError

from grader.harness.compare import describe


def _data(value):
    if isinstance(value, numbers.Real) and type(value) not in (bool, int, float):
        value = float(value)  # numpy scalars (from .numpy() code) count as numbers
    return describe(value)


def _by_hand(function, *args):
    with torch.no_grad():
        return _data(function(*args))


def model(submission, t_u, w, b):
    return _by_hand(submission.model, t_u, w, b)


def loss_fn(submission, t_p, t_c):
    return _by_hand(submission.loss_fn, t_p, t_c)


def dloss_fn(submission, t_p, t_c):
    return _by_hand(submission.dloss_fn, t_p, t_c)


def dmodel_dw(submission, t_u, w, b):
    return _by_hand(submission.dmodel_dw, t_u, w, b)


def dmodel_db(submission, t_u, w, b):
    return _by_hand(submission.dmodel_db, t_u, w, b)


def grad_fn(submission, t_u, t_c, t_p, w, b):
    return _by_hand(submission.grad_fn, t_u, t_c, t_p, w, b)


def training_loop(submission, n_epochs, learning_rate, params, t_u, t_c):
    return _by_hand(submission.training_loop, n_epochs, learning_rate, params, t_u, t_c)


def finite_difference_w(submission, t_u, t_c, w, b, delta):
    return _by_hand(submission.finite_difference_w, t_u, t_c, w, b, delta)


def poly_grads(submission, x, y, a, b, c, d):
    with torch.no_grad():
        grads = submission.poly_grads(x, y, a, b, c, d)
    return [_data(g) for g in grads] if isinstance(grads, (tuple, list)) else _data(grads)


def legendre_gradcheck(submission, x):
    """gradcheck in float64, plus whether the output hangs on the student's own backward node."""
    function = submission.LegendrePolynomial3
    output = function.apply(x.clone().requires_grad_())
    try:
        torch.autograd.gradcheck(function.apply, (x.clone().requires_grad_(),))
        problem = ""
    except GradcheckError as exc:
        problem = str(exc)[:600]
    return {"custom_backward": isinstance(output.grad_fn, BackwardCFunction),
            "grad_fn": type(output.grad_fn).__name__, "problem": problem}


def legendre_float32(submission, x, upstream):
    x = x.clone().requires_grad_()
    output = submission.LegendrePolynomial3.apply(x)
    output.backward(upstream)
    return {"forward": describe(output), "grad": describe(x.grad)}
