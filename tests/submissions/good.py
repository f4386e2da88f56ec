import torch
def z_fn(a, b, c):
    return 2 * (a - b) + c
def grad_b(a, b, c):
    b = torch.tensor(b, requires_grad=True)
    z = 2 * (torch.tensor(a) - b) + torch.tensor(c)
    z.backward()
    return b.grad
def maximize(a, b, c, lr, epochs):
    a = torch.tensor(a); b = torch.tensor(b, requires_grad=True); c = torch.tensor(c)
    optimizer = torch.optim.SGD([b], maximize=True, lr=lr)
    for epoch in range(epochs):
        z = 2 * (a - b) + c
        z.backward()
        optimizer.step()
        optimizer.zero_grad()
    return b.item()
def sgd_step(a, b, c, lr):
    return maximize(a, b, c, lr, 1)
def accumulated_grad(a, b, c, times):
    b = torch.tensor(b, requires_grad=True)
    for _ in range(times):
        z = 2 * (a - b) + c
        z.backward()
    return b.grad
