"""Reference solution for `autograd-loop`: training with autograd and torch.optim (seeds 002/003)."""

import torch


def model(t_u, w, b):
    return w * t_u + b


def loss_fn(t_p, t_c):
    return ((t_p - t_c) ** 2).mean()


def training_loop(n_epochs, learning_rate, params, t_u, t_c):
    for _ in range(n_epochs):
        if params.grad is not None:
            params.grad.zero_()
        loss = loss_fn(model(t_u, *params), t_c)
        loss.backward()
        with torch.no_grad():
            params -= learning_rate * params.grad
    return params


def training_loop_opt(n_epochs, optimizer, params, t_u, t_c):
    for _ in range(n_epochs):
        loss = loss_fn(model(t_u, *params), t_c)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return params


def train_val_loop(n_epochs, optimizer, params, train_t_u, val_t_u, train_t_c, val_t_c):
    for _ in range(n_epochs):
        train_loss = loss_fn(model(train_t_u, *params), train_t_c)
        with torch.no_grad():
            val_loss = loss_fn(model(val_t_u, *params), val_t_c)
        optimizer.zero_grad()
        train_loss.backward()
        optimizer.step()
    return params, train_loss.detach(), val_loss


def split_indices(n_samples, val_fraction, generator):
    n_val = int(val_fraction * n_samples)
    shuffled = torch.randperm(n_samples, generator=generator)
    return shuffled[:-n_val], shuffled[-n_val:]
