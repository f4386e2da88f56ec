"""Checks for `broadcasting`: shapes against torch.broadcast_shapes, values against the reference, and
timings of the vectorised functions against the reference's own time on the same large inputs."""

import torch

from grader.harness.compare import assert_tensor_close, call

SLOWER_THAN_REFERENCE = 20  # the contract's limit
MIN_BUDGET = 0.05  # seconds: below this, timer noise could fail a vectorised answer


# ---- broadcast_shape ---------------------------------------------------------------------------

def _compatible_pair(rng, sizes=(1, 2, 3, 4, 5, 6, 7)):
    """Two shapes of different ranks that broadcast: suffixes of one shape, some dims replaced by 1."""
    rank_a, rank_b = (int(r) for r in rng.choice(5, size=2, replace=False))
    full = [int(rng.choice(sizes)) for _ in range(max(rank_a, rank_b))]

    def shrink(rank):
        return tuple(1 if rng.random() < 0.3 else d for d in full[len(full) - rank:])

    return shrink(rank_a), shrink(rank_b)


def _incompatible_pair(rng):
    """A compatible pair with one aligned dimension changed so that neither side is 1 and they differ."""
    while True:
        a, b = _compatible_pair(rng)
        if min(len(a), len(b)) > 0:
            break
    k = int(rng.integers(1, min(len(a), len(b)) + 1))
    a, b = list(a), list(b)
    a[-k], b[-k] = int(rng.integers(2, 5)), int(rng.integers(5, 9))
    return (tuple(a), tuple(b)) if rng.random() < 0.5 else (tuple(b), tuple(a))


def _two_sizes(rng):
    p, q = (int(v) for v in rng.choice(range(2, 9), size=2, replace=False))
    return p, q


def _expected(shape_a, shape_b):
    try:
        return tuple(torch.broadcast_shapes(tuple(shape_a), tuple(shape_b)))
    except RuntimeError:
        return None


def _check_broadcast(student, shape_a, shape_b, kind="tuple"):
    what = f"broadcast_shape({_show(shape_a, kind)}, {_show(shape_b, kind)})"
    got = student.run("broadcast_shape", shape_a=shape_a, shape_b=shape_b, kind=kind)
    want = _expected(shape_a, shape_b)
    problem = _broadcast_problem(got, want, shape_a, shape_b)
    if problem and got["used"]:
        raise AssertionError(f"{what} called {', '.join(sorted(set(got['used'])))}, which is disabled in this "
                             f"exercise: apply the three rules yourself (expected {'a ValueError' if want is None else want})")
    if problem:
        raise AssertionError(f"{what} {problem}")


def _broadcast_problem(got, want, shape_a, shape_b):
    """What is wrong with the probe's account of one call, or None."""
    if want is None:
        if got["raised"] is None:
            return (f"returned {_show(got['dims'])}, but these shapes are incompatible: right-align them and some "
                    "dimension pair differs with neither size 1. Raise ValueError")
        return None if got["value_error"] else f"raised {_raised(got)}; incompatible shapes must raise ValueError"
    if got["raised"] is not None:
        return f"raised {_raised(got)}; expected {want}"
    if not got["is_tuple"]:
        return f"returned a {got['type']} ({_show(got['dims'])}); expected the tuple {want}"
    if got["dims"] != list(want):
        hint = ""
        if 0 in (*shape_a, *shape_b):
            hint = " (a size-1 dimension stretches to the other size, 0 included)"
        elif len(shape_a) != len(shape_b):
            hint = " (align the shapes from the right: pad the shorter one with 1s at the front)"
        return f"returned {tuple(got['dims'])}; expected {want}{hint}"
    return None


def _raised(got):
    return f"{got['raised']}: {got['message']}" if got["message"] else got["raised"]


def _show(shape, kind="tuple"):
    if isinstance(shape, str):
        return shape
    if kind == "size":
        return f"torch.Size({list(shape)})"
    return repr(list(shape)) if kind == "list" else repr(tuple(shape))


def test_broadcast_shape_random_pairs(student, rng):
    p, q = _two_sizes(rng)
    pairs = [((p, 1), (q,)), ((), (p, q)), ((q, 1, p), (1, p))]
    pairs += [_compatible_pair(rng) for _ in range(8)]
    for shape_a, shape_b in pairs:
        _check_broadcast(student, shape_a, shape_b)


def test_broadcast_shape_incompatible(student, rng):
    p, q = _two_sizes(rng)
    pairs = [((p, q), (q, p)), ((p,), (p, q))] + [_incompatible_pair(rng) for _ in range(6)]
    for shape_a, shape_b in pairs:
        _check_broadcast(student, shape_a, shape_b)


def test_broadcast_shape_size_zero(student, rng):
    p, q = _two_sizes(rng)
    for shape_a, shape_b in [((0,), (p, 1)), ((q, 0), (1,)), ((0, 1), (p,)), ((0,), (p,)), ((p, 0), (q, 1, 1))]:
        _check_broadcast(student, shape_a, shape_b)


def test_broadcast_shape_input_kinds(student, rng):
    p, q = _two_sizes(rng)
    _check_broadcast(student, (p, 1), (q,), kind="list")
    _check_broadcast(student, (p, 1), (q,), kind="size")
    _check_broadcast(student, (), (), kind="size")
    for kind in ("list", "size"):
        shape_a, shape_b = _compatible_pair(rng)
        _check_broadcast(student, shape_a, shape_b, kind=kind)


# ---- lecture_shapes ----------------------------------------------------------------------------

def test_lecture_shapes(student):
    got = student.run("lecture_shapes")
    want = [[3, 1], [3, 3], [2, 3, 3]]
    if got != want:
        raise AssertionError(f"lecture_shapes() returned {got}; expected the shapes of x * y, y * z and y * z * a: "
                             "((3, 1), (3, 3), (2, 3, 3))")


# ---- values ------------------------------------------------------------------------------------

def _randn(rng, *shape, dtype=torch.float32):
    return torch.from_numpy(rng.normal(0, 3, size=shape)).to(dtype)


def _check_values(student, reference, function, **inputs):
    want = reference.run(function, **inputs)["value"]
    assert_tensor_close(student.run(function, **inputs), want, call(function, **inputs), dtype=want.dtype)


def test_center_values(student, reference, rng):
    for _ in range(3):
        n, d = (int(v) for v in rng.choice(range(2, 40), size=2, replace=False))
        _check_values(student, reference, "center", x=_randn(rng, n, d) + _randn(rng, d))


def test_center_keeps_dtype(student, reference, rng):
    _check_values(student, reference, "center", x=_randn(rng, int(rng.integers(5, 30)), 3, dtype=torch.float64))


def _check_sq_dists(student, reference, x, y):
    inputs = dict(x=x, y=y)
    want = reference.run("pairwise_sq_dists", **inputs)["value"]
    scale = 1 + want.abs().max().item()
    assert_tensor_close(student.run("pairwise_sq_dists", **inputs), want, call("pairwise_sq_dists", **inputs),
                        rtol=0, atol=1e-4 * scale)


def test_pairwise_sq_dists_values(student, reference, rng):
    for _ in range(3):
        n, m, d = (int(v) for v in rng.choice(range(2, 30), size=3, replace=False))
        _check_sq_dists(student, reference, _randn(rng, n, d), _randn(rng, m, d))


def test_pairwise_sq_dists_edge_shapes(student, reference, rng):
    n, m = _two_sizes(rng)
    points = _randn(rng, n, 2)
    for x, y in [(points, points), (_randn(rng, 1, 3), _randn(rng, m, 3)), (_randn(rng, n, 1), _randn(rng, 1, 1))]:
        _check_sq_dists(student, reference, x, y)


def test_outer_affine_values(student, reference, rng):
    for _ in range(3):
        n, p, q = (int(v) for v in rng.choice(range(2, 20), size=3, replace=False))
        _check_values(student, reference, "outer_affine", t_u=_randn(rng, n), w=_randn(rng, p), b=_randn(rng, q))


# ---- no Python loops ---------------------------------------------------------------------------

def _assert_fast(student, reference, function, configs, hint):
    for sizes in configs:
        ref_time = reference.run("timed", function=function, sizes=sizes)
        got_time = student.run("timed", function=function, sizes=sizes)
        budget = max(SLOWER_THAN_REFERENCE * ref_time, MIN_BUDGET)
        if got_time > budget:
            shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
            raise AssertionError(
                f"{function} on large inputs ({shown}) took {1000 * got_time:.0f} ms; the reference takes "
                f"{1000 * ref_time:.1f} ms on the same inputs, and the limit is 20 times that "
                f"(at least {1000 * MIN_BUDGET:.0f} ms). That is the cost of a Python loop: {hint}")


def _large(rng):
    return int(rng.integers(40_000, 60_000))


def _small(rng):
    return int(rng.integers(2, 5))


def test_center_vectorised(student, reference, rng):
    configs = [dict(n=_large(rng), d=_small(rng)), dict(n=_small(rng), d=_large(rng))]
    _assert_fast(student, reference, "center", configs, "subtract x.mean(dim=0) from the whole matrix at once.")


def test_pairwise_sq_dists_vectorised(student, reference, rng):
    configs = [dict(n=_large(rng), m=_small(rng), d=_small(rng)), dict(n=_small(rng), m=_large(rng), d=_small(rng)),
               dict(n=_small(rng), m=_small(rng), d=_large(rng))]
    _assert_fast(student, reference, "pairwise_sq_dists", configs,
                 "compare every x_i with every y_j in one expression, x[:, None, :] - y[None, :, :].")


def test_outer_affine_vectorised(student, reference, rng):
    configs = [dict(n=_large(rng), p=_small(rng), q=_small(rng)), dict(n=_small(rng), p=_large(rng), q=_small(rng)),
               dict(n=_small(rng), p=_small(rng), q=_large(rng))]
    _assert_fast(student, reference, "outer_affine", configs,
                 "give w, b and t_u their own axes (w[:, None, None], b[None, :, None], t_u[None, None, :]).")
