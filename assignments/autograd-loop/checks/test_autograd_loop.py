"""Checks for `autograd-loop`: training loops with autograd and torch.optim, compared with the reference.

The probes hand the student's loops a float32 [w, b] leaf with requires_grad=True and, for the
optimizer versions, an optimizer built over it in the student process.
"""

import torch

from grader.harness.clients import StudentError
from grader.harness.compare import (assert_not_attached, assert_scalar_close, assert_tensor_close, call, scalar,
                                    show, tensor)

LECTURE_T_C = [0.5, 14.0, 15.0, 28.0, 11.0, 8.0, 3.0, -4.0, 6.0, 13.0, 21.0]
LECTURE_T_U = [35.7, 55.9, 58.2, 81.9, 56.3, 48.9, 33.9, 21.8, 48.4, 60.4, 68.4]
ZERO_GRAD = "gradients accumulate: zero params.grad every epoch (params.grad.zero_() or optimizer.zero_grad())"
SUMMED = "the loss is the mean of the squared errors, not their sum"


def _f32(values):
    return torch.tensor(values, dtype=torch.float32)


def _thermometer(rng, n=None):
    """Random readings, already normalised like the lecture's t_un = 0.1 * t_u, and noisy Celsius targets."""
    n = n or int(rng.integers(6, 40))
    t_u = rng.uniform(2.0, 9.0, n)
    t_c = rng.uniform(3.0, 7.0) * t_u + rng.uniform(-25.0, -10.0) + rng.normal(0.0, 1.5, n)
    return _f32(t_u), _f32(t_c)


def _params(rng):
    return _f32([round(float(rng.uniform(-1.0, 3.0)), 3), round(float(rng.uniform(-5.0, 5.0)), 3)])


def _run(student, probe, what, **inputs):
    try:
        return student.run(probe, **inputs)
    except StudentError as exc:
        raise AssertionError(f"{what} raised {exc}") from None


def _simulate(n_epochs, optimizer, lr, params, t_u, t_c, momentum=0.0, zero=True, reduce="mean"):
    """The lecture's loop, optionally with a classic mistake: what that mistake returns (for hints)."""
    params = params.clone().requires_grad_()
    step = (torch.optim.Adam([params], lr=lr) if optimizer == "adam" else
            torch.optim.SGD([params], lr=lr, momentum=momentum))
    for _ in range(n_epochs):
        if zero:
            step.zero_grad()
        getattr((params[0] * t_u + params[1] - t_c) ** 2, reduce)().backward()
        step.step()
    return params.detach()


def _matches(got, value):
    got = got["value"] if isinstance(got, dict) else got
    try:
        return bool(torch.allclose(torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(value, dtype=torch.float64),
                                   rtol=1e-3, atol=1e-3, equal_nan=True))
    except (TypeError, ValueError, RuntimeError):
        return False


def _with_hint(check, got, hints):
    """Run an assertion; when it fails, add the hint of the first classic mistake `got` matches (hints() is lazy)."""
    try:
        check()
    except AssertionError as exc:
        hint = next((h for mistake, h in hints() if _matches(got, mistake)), None)
        if hint is None:
            raise
        raise AssertionError(f"{exc}\nHint: {hint}") from None


def _check_params(got, want, what, hints=lambda: []):
    """Returned params: float32 [2], the reference's values, not attached to a graph."""
    _with_hint(lambda: assert_tensor_close(got, want["value"], what, dtype=torch.float32), got, hints)
    assert_not_attached(got, what)


def _check_training_loop(student, reference, n_epochs, learning_rate, params, t_u, t_c):
    inputs = dict(n_epochs=n_epochs, learning_rate=learning_rate, params=params, t_u=t_u, t_c=t_c)
    what = call("training_loop", **inputs)
    _check_params(_run(student, "training_loop", what, **inputs), reference.run("training_loop", **inputs), what,
                  lambda: [(_simulate(n_epochs, "sgd", learning_rate, params, t_u, t_c, zero=False), ZERO_GRAD),
                           (_simulate(n_epochs, "sgd", learning_rate, params, t_u, t_c, reduce="sum"), SUMMED)])


def test_training_loop_lecture_data(student, reference, rng):
    _check_training_loop(student, reference, int(rng.integers(100, 3000)), 1e-2, _f32([1.0, 0.0]),
                         0.1 * _f32(LECTURE_T_U), _f32(LECTURE_T_C))


def test_training_loop_random(student, reference, rng):
    for _ in range(2):
        learning_rate = round(float(rng.uniform(0.002, 0.012)), 4)
        _check_training_loop(student, reference, int(rng.integers(5, 600)), learning_rate, _params(rng),
                             *_thermometer(rng))


def _check_training_loop_opt(student, reference, rng, optimizer, lr, n_epochs, momentum=0.0):
    params, (t_u, t_c) = _params(rng), _thermometer(rng)
    inputs = dict(n_epochs=n_epochs, optimizer=optimizer, lr=lr, momentum=momentum, params=params, t_u=t_u, t_c=t_c)
    settings = f"lr={lr}" + (f", momentum={momentum}" if optimizer == "momentum" else "")
    what = (f"training_loop_opt(n_epochs={n_epochs}, optimizer=<{'SGD' if optimizer != 'adam' else 'Adam'} over "
            f"[params], {settings}>, params={show(params)}, t_u, t_c) with {len(t_u)} samples")
    _check_params(_run(student, "training_loop_opt", what, **inputs), reference.run("training_loop_opt", **inputs), what,
                  lambda: [(_simulate(n_epochs, "sgd", 1e-2, params, t_u, t_c), "that is what a new optim.SGD([params], "
                            "lr=1e-2) gives: step the optimizer you were passed, do not build another one"),
                           (_simulate(n_epochs, optimizer, lr, params, t_u, t_c, momentum, zero=False), ZERO_GRAD),
                           (_simulate(n_epochs, optimizer, lr, params, t_u, t_c, momentum, reduce="sum"), SUMMED)])


def test_training_loop_opt_sgd(student, reference, rng):
    for _ in range(2):
        lr = round(float(rng.uniform(0.002, 0.008)), 4)
        _check_training_loop_opt(student, reference, rng, "sgd", lr, int(rng.integers(5, 500)))


def test_training_loop_opt_momentum(student, reference, rng):
    lr, momentum = round(float(rng.uniform(0.001, 0.006)), 4), round(float(rng.uniform(0.5, 0.9)), 2)
    _check_training_loop_opt(student, reference, rng, "momentum", lr, int(rng.integers(5, 300)), momentum)


def test_training_loop_opt_adam(student, reference, rng):
    lr = round(float(rng.uniform(0.02, 0.2)), 3)
    _check_training_loop_opt(student, reference, rng, "adam", lr, int(rng.integers(5, 150)))


def _train_val(student, reference, rng, optimizer, lr, n_epochs):
    """Run train_val_loop on a random split; return (student's three results, reference's, description, n_train)."""
    t_u, t_c = _thermometer(rng, int(rng.integers(10, 40)))
    n_val = int(rng.integers(2, len(t_u) // 2))
    inputs = dict(n_epochs=n_epochs, optimizer=optimizer, lr=lr, momentum=0.9, params=_params(rng),
                  train_t_u=t_u[n_val:], val_t_u=t_u[:n_val], train_t_c=t_c[n_val:], val_t_c=t_c[:n_val])
    name = {"sgd": "SGD", "momentum": "SGD(momentum=0.9)", "adam": "Adam"}[optimizer]
    what = (f"train_val_loop(n_epochs={n_epochs}, optimizer=<{name} over [params], lr={lr}>, "
            f"params={show(inputs['params'])}, ...) with {len(t_u) - n_val} training and {n_val} validation samples")
    got = _parts(_run(student, "train_val_loop", what, **inputs), what, "params, train_loss, val_loss")
    return got, reference.run("train_val_loop", **inputs), what, len(t_u) - n_val, n_val


def _optimizer_settings(rng):
    kind = ["sgd", "momentum", "adam"][int(rng.integers(0, 3))]
    lr = round(float(rng.uniform(0.02, 0.2) if kind == "adam" else rng.uniform(0.001, 0.006)), 4)
    return kind, lr


def test_train_val_loop_params(student, reference, rng):
    for kind, lr in [("sgd", round(float(rng.uniform(0.002, 0.012)), 4)), _optimizer_settings(rng)]:
        got, want, what, _, _ = _train_val(student, reference, rng, kind, lr, int(rng.integers(5, 500)))
        _check_params(got[0], want[0], what)


def test_train_val_loop_losses(student, reference, rng):
    for n_epochs in (1, int(rng.integers(2, 300))):
        got, want, what, n_train, n_val = _train_val(student, reference, rng, *_optimizer_settings(rng), n_epochs)
        for index, name, n in ((1, "train_loss", n_train), (2, "val_loss", n_val)):
            expected = scalar(want[index], "the reference")
            hints = [(n * expected, SUMMED), (want[2 if index == 1 else 1]["value"], "train_loss and val_loss are swapped")]
            _with_hint(lambda: assert_scalar_close(got[index], expected, f"{name} of {what}"), got[index],
                       lambda: hints)


def test_train_val_loop_val_loss_no_grad(student, reference, rng):
    got, _, what, _, _ = _train_val(student, reference, rng, "sgd", 0.005, int(rng.integers(2, 50)))
    val_loss = got[2]
    if val_loss["type"] != "tensor":
        raise AssertionError(f"{what} returned val_loss as a {val_loss['type']}; expected the 0-d tensor itself "
                             "(not .item()), computed under torch.no_grad()")
    if val_loss["value"].dim():
        raise AssertionError(f"{what} returned val_loss of shape {list(val_loss['value'].shape)}; expected a 0-d tensor")
    assert not val_loss["requires_grad"], (
        f"{what} returned a val_loss that requires grad: the validation loss was computed with autograd on. "
        "Compute it under torch.no_grad() so that it builds no graph (val_loss.requires_grad must be False)")


def _parts(got, what: str, names: str) -> list:
    """The probe's list for a returned tuple, or a failure naming the tuple the contract wants."""
    if not (isinstance(got, list) and len(got) == len(names.split(", "))):
        raise AssertionError(f"{what} returned {got.get('value') if isinstance(got, dict) else got!r}; "
                             f"expected a tuple ({names})")
    return got


def _split(student, n_samples, val_fraction, seed, global_seed):
    inputs = dict(n_samples=n_samples, val_fraction=val_fraction, seed=seed, global_seed=global_seed)
    what = (f"split_indices(n_samples={n_samples}, val_fraction={val_fraction}, "
            f"generator=torch.Generator().manual_seed({seed}))")
    got = _parts(_run(student, "split_indices", what, **inputs), what, "train_idx, val_idx")
    train, val = (tensor(part, f"{name} of {what}") for part, name in zip(got, ("train_idx", "val_idx")))
    for part, name in ((train, "train_idx"), (val, "val_idx")):
        if part.dim() != 1 or part.dtype != torch.int64:
            raise AssertionError(f"{what} returned {name} of shape {list(part.shape)} and dtype {part.dtype}; "
                                 "expected a 1-D int64 tensor")
    return train, val, what


def test_split_indices_partition(student, rng):
    for low, high, smallest in ((0.3, 0.5, 10), (0.05, 0.15, 20), (0.1, 0.9, 10)):
        n_samples = int(rng.integers(smallest, 80))
        val_fraction = round(float(rng.uniform(low, high)), 2)
        train, val, what = _split(student, n_samples, val_fraction, int(rng.integers(0, 2**31)), 0)
        n_val = int(val_fraction * n_samples)
        if len(val) != n_val or len(train) != n_samples - n_val:
            raise AssertionError(f"{what} returned {len(train)} training and {len(val)} validation indices; expected "
                                 f"{n_samples - n_val} and {n_val} (n_val = int(val_fraction * n_samples) = {n_val})")
        together = torch.cat([train, val]).sort().values
        assert torch.equal(together, torch.arange(n_samples)), (
            f"{what}: train_idx and val_idx together are not a permutation of range({n_samples}) "
            "(every index exactly once)")


def test_split_indices_uses_generator(student, rng):
    n_samples, val_fraction = int(rng.integers(15, 60)), round(float(rng.uniform(0.15, 0.5)), 2)
    seeds = [int(s) for s in rng.choice(2**31, size=3, replace=False)]
    global_seeds = [int(s) for s in rng.integers(0, 2**31, size=2)]
    as_sets = lambda split: (split[0].sort().values, split[1].sort().values)  # the order inside a part is free
    first, again = (as_sets(_split(student, n_samples, val_fraction, seeds[0], g)) for g in global_seeds)
    what = (f"split_indices(n_samples={n_samples}, val_fraction={val_fraction}, "
            f"generator=torch.Generator().manual_seed({seeds[0]}))")
    assert all(torch.equal(a, b) for a, b in zip(first, again)), (
        f"{what} gave different splits after torch.manual_seed({global_seeds[0]}) and torch.manual_seed("
        f"{global_seeds[1]}): draw the permutation from the generator you are given "
        "(torch.randperm(n_samples, generator=generator)), not from the global RNG")
    others = [as_sets(_split(student, n_samples, val_fraction, s, global_seeds[0]))[1] for s in seeds[1:]]
    assert any(not torch.equal(first[1], val) for val in others), (
        f"split_indices(n_samples={n_samples}, val_fraction={val_fraction}, generator) chose the same validation "
        f"indices for generators seeded {seeds}: shuffle the indices (torch.randperm with the generator) before splitting")
