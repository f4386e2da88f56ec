"""Probes for `autograd-loop`: run in the student process as probe(submission, **inputs).

The optimizers are built here, in the student process, over the params leaf handed to the
student's loop; only plain data (described values) goes back.
"""

import torch

from grader.harness.compare import describe

OPTIMIZERS = {
    "sgd": lambda params, lr, momentum: torch.optim.SGD(params, lr=lr),
    "momentum": lambda params, lr, momentum: torch.optim.SGD(params, lr=lr, momentum=momentum),
    "adam": lambda params, lr, momentum: torch.optim.Adam(params, lr=lr),
}


def _parts(result):
    return [describe(v) for v in result] if isinstance(result, (tuple, list)) else describe(result)


def training_loop(submission, n_epochs, learning_rate, params, t_u, t_c):
    params = params.clone().requires_grad_()
    return describe(submission.training_loop(n_epochs, learning_rate, params, t_u, t_c))


def training_loop_opt(submission, n_epochs, optimizer, lr, momentum, params, t_u, t_c):
    params = params.clone().requires_grad_()
    optimizer = OPTIMIZERS[optimizer]([params], lr, momentum)
    return describe(submission.training_loop_opt(n_epochs, optimizer, params, t_u, t_c))


def train_val_loop(submission, n_epochs, optimizer, lr, momentum, params, train_t_u, val_t_u, train_t_c, val_t_c):
    params = params.clone().requires_grad_()
    optimizer = OPTIMIZERS[optimizer]([params], lr, momentum)
    return _parts(submission.train_val_loop(n_epochs=n_epochs, optimizer=optimizer, params=params,
                                            train_t_u=train_t_u, val_t_u=val_t_u,
                                            train_t_c=train_t_c, val_t_c=val_t_c))


def split_indices(submission, n_samples, val_fraction, seed, global_seed):
    """The split for a generator seeded with `seed`, after seeding the global RNG with `global_seed`."""
    torch.manual_seed(global_seed)
    return _parts(submission.split_indices(n_samples, val_fraction, torch.Generator().manual_seed(seed)))
