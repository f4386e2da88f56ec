# Returns the optimised leaf itself (still requires grad) and zeroes gradients in accumulated_grad.
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
        z_fn(a, b, c).backward()
        optimizer.step()
        optimizer.zero_grad()
    return b


def sgd_step(a, b, c, lr):
    return maximize(a, b, c, lr, 1)


def accumulated_grad(a, b, c, times):
    b = torch.tensor(b, requires_grad=True)
    for _ in range(times):
        b.grad = None
        z_fn(a, b, c).backward()
    return b.grad
