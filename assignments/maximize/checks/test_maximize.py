"""Checks for `maximize`: each compares the student's result with the reference's on the same inputs."""

from grader.harness.compare import assert_no_grad, assert_scalar_close, call, scalar


def _abc(rng):
    a, b, c = (round(float(v), 3) for v in rng.uniform(-10, 10, size=3))
    return a, b, c


def test_z_fn_lecture_values(student, reference):
    inputs = dict(a=3.0, b=4.0, c=5.0)
    assert_scalar_close(student.run("z_fn", **inputs), reference.run("z_fn", **inputs), call("z_fn", **inputs))


def test_z_fn_random_inputs(student, reference, rng):
    for _ in range(5):
        a, b, c = _abc(rng)
        inputs = dict(a=a, b=b, c=c)
        assert_scalar_close(student.run("z_fn", **inputs), reference.run("z_fn", **inputs), call("z_fn", **inputs))


def test_grad_b_is_minus_two(student, reference, rng):
    for _ in range(3):
        a, b, c = _abc(rng)
        inputs = dict(a=a, b=b, c=c)
        assert_scalar_close(student.run("grad_b", **inputs), reference.run("grad_b", **inputs), call("grad_b", **inputs))


def test_sgd_step_lecture_values(student, reference):
    inputs = dict(a=3.0, b=4.0, c=5.0, lr=0.1)
    got = student.run("sgd_step", **inputs)
    if abs(scalar(got, call("sgd_step", **inputs)) - 4.2) < 1e-4:
        raise AssertionError(f"{call('sgd_step', **inputs)} returned 4.2: b moved up, so z went down. "
                             "Pass maximize=True to torch.optim.SGD")
    assert_scalar_close(got, reference.run("sgd_step", **inputs), call("sgd_step", **inputs))


def test_sgd_step_random_inputs(student, reference, rng):
    for _ in range(3):
        a, b, c = _abc(rng)
        inputs = dict(a=a, b=b, c=c, lr=round(float(rng.uniform(0.01, 0.5)), 3))
        assert_scalar_close(student.run("sgd_step", **inputs), reference.run("sgd_step", **inputs),
                            call("sgd_step", **inputs))


def test_sgd_step_returns_detached(student, rng):
    a, b, c = _abc(rng)
    inputs = dict(a=a, b=b, c=c, lr=0.1)
    assert_no_grad(student.run("sgd_step", **inputs), call("sgd_step", **inputs))


def test_maximize_lecture_values(student, reference):
    inputs = dict(a=1.0, b=4.0, c=3.0, lr=0.1, epochs=10)
    assert_scalar_close(student.run("maximize", **inputs), reference.run("maximize", **inputs), call("maximize", **inputs))


def test_maximize_random_inputs(student, reference, rng):
    for _ in range(3):
        a, b, c = _abc(rng)
        lr, epochs = round(float(rng.uniform(0.01, 0.3)), 3), int(rng.integers(2, 25))
        inputs = dict(a=a, b=b, c=c, lr=lr, epochs=epochs)
        what = call("maximize", **inputs)
        got = scalar(student.run("maximize", **inputs), what)
        accumulated = b - lr * epochs * (epochs + 1)
        if abs(got - accumulated) < 1e-3:
            raise AssertionError(f"{what} returned {got:.6g}, the value you get when gradients accumulate "
                                 "across epochs: call optimizer.zero_grad() after each step")
        assert_scalar_close(got, reference.run("maximize", **inputs), what)


def test_maximize_returns_detached(student, rng):
    a, b, c = _abc(rng)
    inputs = dict(a=a, b=b, c=c, lr=0.1, epochs=3)
    assert_no_grad(student.run("maximize", **inputs), call("maximize", **inputs))


def test_accumulated_grad(student, reference, rng):
    for times in sorted({1, 2, int(rng.integers(3, 9))}):
        a, b, c = _abc(rng)
        inputs = dict(a=a, b=b, c=c, times=times)
        assert_scalar_close(student.run("accumulated_grad", **inputs), reference.run("accumulated_grad", **inputs),
                            call("accumulated_grad", **inputs))
