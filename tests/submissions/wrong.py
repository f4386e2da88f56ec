# Every function returns 0.0: wrong everywhere, but numbers that do not require grad.
def z_fn(a, b, c):
    return 0.0


def grad_b(a, b, c):
    return 0.0


def sgd_step(a, b, c, lr):
    return 0.0


def maximize(a, b, c, lr, epochs):
    return 0.0


def accumulated_grad(a, b, c, times):
    return 0.0
