"""Probes for `maximize`: run in the student process as probe(submission, **inputs)."""

from grader.harness.compare import describe


def z_fn(submission, a, b, c):
    return describe(submission.z_fn(a, b, c))


def grad_b(submission, a, b, c):
    return describe(submission.grad_b(a, b, c))


def sgd_step(submission, a, b, c, lr):
    return describe(submission.sgd_step(a, b, c, lr))


def maximize(submission, a, b, c, lr, epochs):
    return describe(submission.maximize(a, b, c, lr, epochs))


def accumulated_grad(submission, a, b, c, times):
    return describe(submission.accumulated_grad(a, b, c, times))
