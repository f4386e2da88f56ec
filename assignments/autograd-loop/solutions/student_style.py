# My solution for the autograd homework.
import torch
import torch.nn.functional as F


def predict(params, x):
    w, b = params[0], params[1]
    return w * x + b


def training_loop(n_epochs, learning_rate, params, t_u, t_c):
    for i in range(n_epochs):
        loss = F.mse_loss(predict(params, t_u), t_c)
        if params.grad is not None:
            params.grad.zero_()
        loss.backward()
        with torch.no_grad():
            params -= learning_rate * params.grad
    return params.detach()


def training_loop_opt(n_epochs, optimizer, params, t_u, t_c):
    for i in range(n_epochs):
        optimizer.zero_grad()
        loss = F.mse_loss(predict(params, t_u), t_c)
        loss.backward()
        optimizer.step()
    return params


def train_val_loop(n_epochs, optimizer, params, train_t_u, val_t_u, train_t_c, val_t_c):
    history = []
    for epoch in range(n_epochs):
        optimizer.zero_grad()
        train_loss = F.mse_loss(predict(params, train_t_u), train_t_c)
        with torch.no_grad():
            val_loss = F.mse_loss(predict(params, val_t_u), val_t_c)
        train_loss.backward()
        optimizer.step()
        history.append((train_loss.item(), val_loss.item()))
    return params, history[-1][0], val_loss


def split_indices(n_samples, val_fraction, generator):
    perm = torch.randperm(n_samples, generator=generator)
    n_val = int(val_fraction * n_samples)
    return perm[n_val:], perm[:n_val]


t_u = 0.1 * torch.tensor([35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4])
t_c = torch.tensor([0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0])
p = torch.tensor([1.0, 0.0], requires_grad=True)
print(training_loop_opt(100, torch.optim.Adam([p], lr=0.1), p, t_u, t_c))
