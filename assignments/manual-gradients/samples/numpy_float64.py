# Computes grad_fn in numpy: the gradient is float64, so the params become float64.
import numpy as np
import torch


def model(t_u, w, b):
    return w * t_u + b


def loss_fn(t_p, t_c):
    squared_diffs = (t_p - t_c) ** 2
    return squared_diffs.mean()


def dloss_fn(t_p, t_c):
    return 2 * (t_p - t_c) / t_p.size(0)


def dmodel_dw(t_u, w, b):
    return t_u


def dmodel_db(t_u, w, b):
    return 1.0


def grad_fn(t_u, t_c, t_p, w, b):
    err = 2 * (t_p.numpy().astype(np.float64) - t_c.numpy()) / len(t_p)
    return torch.from_numpy(np.array([(err * t_u.numpy()).sum(), err.sum()]))


def training_loop(n_epochs, learning_rate, params, t_u, t_c):
    for epoch in range(1, n_epochs + 1):
        w, b = params
        t_p = model(t_u, w, b)
        grad = grad_fn(t_u, t_c, t_p, w, b)
        params = params - learning_rate * grad
    return params


def finite_difference_w(t_u, t_c, w, b, delta):
    return (loss_fn(model(t_u, w + delta, b), t_c) - loss_fn(model(t_u, w - delta, b), t_c)) / (2.0 * delta)


def poly_grads(x, y, a, b, c, d):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    grad_y_pred = 2.0 * (y_pred - y)
    grad_a = grad_y_pred.sum()
    grad_b = (grad_y_pred * x).sum()
    grad_c = (grad_y_pred * x ** 2).sum()
    grad_d = (grad_y_pred * x ** 3).sum()
    return grad_a, grad_b, grad_c, grad_d


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)
