# Mixes up axes: row means instead of column means, distances instead of squared distances,
# and the grid laid out as [n, p, q] instead of [p, q, n].
import torch


def broadcast_shape(shape_a, shape_b):
    a, b = tuple(shape_a)[::-1], tuple(shape_b)[::-1]
    out = []
    for i in range(max(len(a), len(b))):
        da = a[i] if i < len(a) else 1
        db = b[i] if i < len(b) else 1
        if da != db and da != 1 and db != 1:
            raise ValueError("incompatible shapes")
        out.append(db if da == 1 else da)
    return tuple(out[::-1])


def lecture_shapes():
    x = torch.ones(())
    y = torch.ones(3, 1)
    z = torch.ones(1, 3)
    a = torch.ones(2, 1, 1)
    return (x * y).shape, (y * z).shape, (y * z * a).shape


def center(x):
    return x - x.mean(dim=1, keepdim=True)


def pairwise_sq_dists(x, y):
    return torch.cdist(x, y)


def outer_affine(t_u, w, b):
    return t_u[:, None, None] * w[None, :, None] + b[None, None, :]
