"""Reference solution for `maximize`."""

import torch


def _leaves(a, b, c):
    return torch.tensor(float(a)), torch.tensor(float(b), requires_grad=True), torch.tensor(float(c))


def z_fn(a, b, c):
    return 2 * (a - b) + c


def grad_b(a, b, c):
    a, b, c = _leaves(a, b, c)
    z_fn(a, b, c).backward()
    return b.grad


def maximize(a, b, c, lr, epochs):
    a, b, c = _leaves(a, b, c)
    optimizer = torch.optim.SGD([b], lr=lr, maximize=True)
    for _ in range(epochs):
        z_fn(a, b, c).backward()
        optimizer.step()
        optimizer.zero_grad()
    return b.detach()


def sgd_step(a, b, c, lr):
    return maximize(a, b, c, lr, 1)


def accumulated_grad(a, b, c, times):
    a, b, c = _leaves(a, b, c)
    for _ in range(times):
        z_fn(a, b, c).backward()
    return b.grad
