# A student forgot maximize=True: SGD minimizes z, so b moves the wrong way.
import torch


def z_fn(a, b, c):
    return 2 * (a - b) + c


def grad_b(a, b, c):
    b = torch.tensor(b, requires_grad=True)
    z_fn(torch.tensor(a), b, torch.tensor(c)).backward()
    return b.grad


def maximize(a, b, c, lr, epochs):
    b = torch.tensor(b, requires_grad=True)
    optimizer = torch.optim.SGD([b], lr=lr)
    for epoch in range(epochs):
        z = z_fn(a, b, c)
        z.backward()
        optimizer.step()
        optimizer.zero_grad()
    return b.item()


def sgd_step(a, b, c, lr):
    return maximize(a, b, c, lr, 1)


def accumulated_grad(a, b, c, times):
    b = torch.tensor(b, requires_grad=True)
    for _ in range(times):
        z_fn(a, b, c).backward()
    return b.grad
