"""Reference solution for `broadcasting`."""

import torch


def broadcast_shape(shape_a, shape_b):
    a, b = tuple(shape_a), tuple(shape_b)
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    result = []
    for size_a, size_b in zip(a, b):
        if size_a != size_b and 1 not in (size_a, size_b):
            raise ValueError(f"shapes {tuple(shape_a)} and {tuple(shape_b)} do not broadcast: {size_a} vs {size_b}")
        result.append(size_b if size_a == 1 else size_a)
    return tuple(int(size) for size in result)


def lecture_shapes():
    x, y, z, a = torch.ones(()), torch.ones(3, 1), torch.ones(1, 3), torch.ones(2, 1, 1)
    return (x * y).shape, (y * z).shape, (y * z * a).shape


def center(x):
    return x - x.mean(dim=0)


def pairwise_sq_dists(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(dim=-1)


def outer_affine(t_u, w, b):
    return w[:, None, None] * t_u[None, None, :] + b[None, :, None]
