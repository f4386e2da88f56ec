# Right answers, but computed element by element with Python loops instead of broadcasting.
import torch


def broadcast_shape(shape_a, shape_b):
    a, b = list(shape_a), list(shape_b)
    while len(a) < len(b):
        a.insert(0, 1)
    while len(b) < len(a):
        b.insert(0, 1)
    out = []
    for i in range(len(a)):
        if a[i] == b[i] or b[i] == 1:
            out.append(a[i])
        elif a[i] == 1:
            out.append(b[i])
        else:
            raise ValueError(f"cannot broadcast {shape_a} and {shape_b}")
    return tuple(out)


def lecture_shapes():
    return (3, 1), (3, 3), (2, 3, 3)


def center(x):
    means = x.mean(dim=0)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = x[i] - means
    return out


def pairwise_sq_dists(x, y):
    out = torch.zeros(x.shape[0], y.shape[0])
    for i in range(x.shape[0]):
        for j in range(y.shape[0]):
            out[i, j] = ((x[i] - y[j]) ** 2).sum()
    return out


def outer_affine(t_u, w, b):
    out = torch.zeros(len(w), len(b), len(t_u))
    for i in range(len(w)):
        for j in range(len(b)):
            out[i, j] = w[i] * t_u + b[j]
    return out
