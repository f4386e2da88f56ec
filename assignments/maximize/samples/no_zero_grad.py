# The classic: no optimizer.zero_grad(), so gradients pile up epoch after epoch.
import torch


def z_fn(a, b, c):
    return 2 * (a - b) + c


def grad_b(a, b, c):
    b = torch.tensor(b, requires_grad=True)
    z_fn(a, b, c).backward()
    return b.grad


def maximize(a, b, c, lr, epochs):
    b = torch.tensor(b, requires_grad=True)
    optimizer = torch.optim.SGD([b], maximize=True, lr=lr)
    for epoch in range(epochs):
        z = z_fn(a, b, c)
        z.backward()
        optimizer.step()
    return b.item()


def sgd_step(a, b, c, lr):
    return maximize(a, b, c, lr, 1)


def accumulated_grad(a, b, c, times):
    b = torch.tensor(b, requires_grad=True)
    for _ in range(times):
        z_fn(a, b, c).backward()
    return b.grad
