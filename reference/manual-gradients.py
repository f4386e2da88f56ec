"""Reference solution for `manual-gradients`: every gradient by hand, no autograd (seeds 002/003/004)."""

import torch


def model(t_u, w, b):
    return w * t_u + b


def loss_fn(t_p, t_c):
    return ((t_p - t_c) ** 2).mean()


def dloss_fn(t_p, t_c):
    return 2 * (t_p - t_c) / t_p.size(0)


def dmodel_dw(t_u, w, b):
    return t_u


def dmodel_db(t_u, w, b):
    return 1.0


def grad_fn(t_u, t_c, t_p, w, b):
    dloss_dtp = dloss_fn(t_p, t_c)
    dloss_dw = dloss_dtp * dmodel_dw(t_u, w, b)
    dloss_db = dloss_dtp * dmodel_db(t_u, w, b)
    return torch.stack([dloss_dw.sum(), dloss_db.sum()])


def training_loop(n_epochs, learning_rate, params, t_u, t_c):
    for _ in range(n_epochs):
        w, b = params
        t_p = model(t_u, w, b)
        params = params - learning_rate * grad_fn(t_u, t_c, t_p, w, b)
    return params


def finite_difference_w(t_u, t_c, w, b, delta):
    return (loss_fn(model(t_u, w + delta, b), t_c) - loss_fn(model(t_u, w - delta, b), t_c)) / (2.0 * delta)


def poly_grads(x, y, a, b, c, d):
    grad_y_pred = 2.0 * (a + b * x + c * x ** 2 + d * x ** 3 - y)
    return grad_y_pred.sum(), (grad_y_pred * x).sum(), (grad_y_pred * x ** 2).sum(), (grad_y_pred * x ** 3).sum()


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)
