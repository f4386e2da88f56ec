"""Checks for `csv-dataloader`: generated CSVs (random column names, target anywhere, row counts not
divisible by the batch size), compared with the values the check wrote into them."""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from grader.harness.compare import assert_tensor_close, show, tensor

NAMES = ["temp", "humidity", "wind", "rooms", "area", "age", "dist", "hours", "speed", "rain", "load", "depth"]
FILES = ["houses.csv", "weather.csv", "sensors.csv", "train_data.csv", "measurements.csv"]
LECTURE_CSV = (Path(__file__).resolve().parent.parent / "data" / "lecture_table.csv").read_text()


@dataclass
class Table:
    text: str
    name: str
    columns: list
    target: str
    features: torch.Tensor  # float32 [n, f], file order without the target
    y: torch.Tensor  # float32 [n]

    def __str__(self):
        return f"{self.name!r} (columns {','.join(self.columns)}; {len(self.y)} rows)"


def _table(rng, features, y, names, target="y"):
    """CSV text with the feature columns `names` and the target column at a random position, never the last
    (the lecture's table has it last: code that assumes so must fail here)."""
    at = int(rng.integers(0, len(names)))
    columns = names[:at] + [target] + names[at:]
    values = np.insert(features, at, y, axis=1)
    lines = [",".join(columns)] + [",".join(format(v, ".9g") for v in row) for row in values]
    return Table("\n".join(lines) + "\n", str(rng.choice(FILES)), columns, target,
                 torch.tensor(features, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))


def _random_table(rng, rows, n_features, target="y", extra=()):
    """Distinct rows (the first feature never repeats) of 3-decimal values."""
    names = [str(s) for s in rng.choice(NAMES, n_features - len(extra), replace=False)] + list(extra)
    names = [names[i] for i in rng.permutation(len(names))]
    features = rng.integers(-5000, 5000, size=(rows, n_features)) / 1000
    features[:, 0] = rng.choice(np.arange(-5000, 5000), size=rows, replace=False) / 1000
    return _table(rng, features, rng.integers(-5000, 5000, size=rows) / 1000, names, target)


def _batching(rng):
    """A batch size and a row count that it does not divide."""
    batch_size = int(rng.integers(4, 12))
    return batch_size, batch_size * int(rng.integers(3, 7)) + int(rng.integers(1, batch_size))


def _require(condition, message):
    """`assert condition, message`, whose message survives the grader's pytest settings."""
    if not condition:
        raise AssertionError(message)


# ---- CsvDataset --------------------------------------------------------------------------------

def _check_dataset(student, table, target=None):
    what = f"CsvDataset({table}" + ("" if target is None else f", target={target!r}") + ")"
    got = student.run("dataset", csv=table.text, name=table.name, rows=len(table.y), target=target)
    _require(got["is_dataset"], f"{what} is a {got['type']}; CsvDataset must subclass torch.utils.data.Dataset")
    _require(got["len"] == len(table.y),
             f"len({what}) is {got['len']}; the file has {len(table.y)} rows after the header")
    for i, item in enumerate(got["items"]):
        if len(item) != 2:
            raise AssertionError(f"{what}[{i}] has {len(item)} parts; expected (features, target)")
        assert_tensor_close(item[0], table.features[i], f"{what}[{i}] features (all columns but "
                            f"{table.target!r}, in file order)", dtype=torch.float32)
        assert_tensor_close(item[1], table.y[i], f"{what}[{i}] target", dtype=torch.float32)


def test_dataset_lecture_table(student):
    values = np.loadtxt(LECTURE_CSV.splitlines()[1:], delimiter=",")
    table = Table(LECTURE_CSV, "lecture_table.csv", ["x1", "x2", "y"], "y",
                  torch.tensor(values[:, :2], dtype=torch.float32), torch.tensor(values[:, 2], dtype=torch.float32))
    _check_dataset(student, table)


def test_dataset_random_csv(student, rng):
    for _ in range(2):
        _check_dataset(student, _random_table(rng, int(rng.integers(7, 40)), int(rng.integers(2, 6))))


def test_dataset_other_target(student, rng):
    target = str(rng.choice(["price", "label", "score", "output"]))
    table = _random_table(rng, int(rng.integers(7, 30)), int(rng.integers(2, 5)), target=target, extra=["y"])
    _check_dataset(student, table, target=target)


def test_dataset_missing_target(student, rng):
    table = _random_table(rng, 10, 3)
    target = str(rng.choice(["price", "label", "score", "output"]))
    what = f"CsvDataset({table}, target={target!r})"
    got = student.run("missing_target", csv=table.text, name=table.name, target=target)
    if got["raised"] is None:
        raise AssertionError(f"{what} raised nothing; the file has no {target!r} column, so it must raise "
                             "ValueError or KeyError naming it")
    if not got["accepted"] or target not in got["message"]:
        raised = f"{got['raised']}: {got['message']}" if got["message"] else got["raised"]
        raise AssertionError(f"{what} raised {raised}; expected a ValueError or KeyError whose message names the "
                             f"missing column {target!r}")


# ---- make_loader -------------------------------------------------------------------------------

def _row_ids(batches, table, what):
    """The CSV row of every row of every batch, found by its values (the rows are distinct)."""
    rows = torch.cat([table.features, table.y[:, None]], dim=1)
    ids = []
    for k, batch in enumerate(batches):
        if len(batch) != 2:
            raise AssertionError(f"{what}: batch {k} has {len(batch)} parts; expected (features, target)")
        x, y = tensor(batch[0], f"{what}, batch {k} features,"), tensor(batch[1], f"{what}, batch {k} target,")
        if x.dim() != 2 or x.shape[1] != table.features.shape[1] or y.numel() != x.shape[0]:
            raise AssertionError(f"{what}: batch {k} has features of shape {list(x.shape)} and targets of shape "
                                 f"{list(y.shape)}; expected [batch, {table.features.shape[1]}] and [batch]")
        got = torch.cat([x.float(), y.float().reshape(-1, 1)], dim=1)
        distance, index = (got[:, None, :] - rows[None, :, :]).abs().amax(dim=2).min(dim=1)
        if (distance > 1e-3).any():
            stray = got[distance > 1e-3][0]
            raise AssertionError(f"{what}: batch {k} holds features and target {show(stray)}, which are not a row "
                                 "of the file")
        ids.append(index.tolist())
    return ids


def _loader(student, rng, shuffle: bool, epochs: int):
    """make_loader on a random table whose row count the batch size does not divide."""
    batch_size, rows = _batching(rng)
    table = _random_table(rng, rows, int(rng.integers(2, 5)))
    what = f"make_loader({table}, batch_size={batch_size}, shuffle={shuffle})"
    got = student.run("loader", csv=table.text, name=table.name, batch_size=batch_size, shuffle=shuffle, epochs=epochs)
    _require(got["is_loader"], f"{what} returned a {got['type']}; expected a torch.utils.data.DataLoader")
    return batch_size, rows, table, what, got


def test_make_loader_batches(student, rng):
    batch_size, rows, table, what, got = _loader(student, rng, shuffle=False, epochs=1)
    ids = _row_ids(got["epochs"][0], table, what)
    sizes, want = [len(b) for b in ids], [batch_size] * (rows // batch_size) + [rows % batch_size]
    if sizes == want[:-1]:
        raise AssertionError(f"{what} yielded batches of sizes {sizes}: the last {rows % batch_size} rows are missing. "
                             "Keep the last partial batch (drop_last=False)")
    _require(sizes == want, f"{what} yielded batches of sizes {sizes}; expected {want}")
    order = sum(ids, [])
    _require(order == list(range(rows)),
             f"{what} yielded the rows in the order {show(order)}; without shuffling they must come in file order")


def test_make_loader_shuffle_permutation(student, rng):
    batch_size, rows, table, what, got = _loader(student, rng, shuffle=True, epochs=3)
    orders = [sum(_row_ids(epoch, table, what), []) for epoch in got["epochs"]]
    for number, order in enumerate(orders, 1):
        counts = Counter(order)
        missing = [i for i in range(rows) if i not in counts]
        repeated = [i for i, c in counts.items() if c > 1]
        if missing or repeated:
            raise AssertionError(
                f"epoch {number} of {what} yielded {len(order)} rows of {rows}: rows {missing[:8]} never came and "
                f"rows {repeated[:8]} came more than once. Each epoch must yield every row exactly once "
                "(shuffle=True on the DataLoader, no sampling with replacement, no drop_last)")
    if orders[0] == list(range(rows)) or len({tuple(o) for o in orders}) < len(orders):
        raise AssertionError(f"{what} did not shuffle: three epochs gave the orders {[show(o) for o in orders]}; "
                             "each epoch must come in a new random order")


# ---- train_val_test_split ----------------------------------------------------------------------

def _split_inputs(rng):
    """Rows and fractions for which floor rounding and random_split's rounding both land within 1."""
    while True:
        n = int(rng.integers(20, 150))
        val, test = (float(v) for v in rng.choice([0.1, 0.15, 0.2, 0.25, 0.3], size=2))
        fractions = (round(1 - val - test, 2), val, test)
        spare = sum(f * n - int(f * n) for f in fractions)
        if sum(fractions) <= 1 and abs(sum(fractions) - 1) < 1e-9 and spare < 1.5:
            return n, fractions


def test_split_partition(student, rng):
    for _ in range(2):
        n, fractions = _split_inputs(rng)
        seed = int(rng.integers(0, 2**31))
        what = f"train_val_test_split(a dataset of {n} rows, {fractions}, seed={seed})"
        parts = student.run("split", n=n, fractions=fractions, seeds=[seed])[0]
        _require(len(parts) == 3, f"{what} returned {len(parts)} datasets; expected three (train, val, test)")
        names = ("train", "val", "test")
        for i in range(3):
            for j in range(i + 1, 3):
                shared = sorted(set(parts[i]) & set(parts[j]))
                _require(not shared, f"{what}: rows {shared[:8]} are in both {names[i]} and {names[j]}; "
                                     "the parts must be disjoint")
        lost = sorted(set(range(n)) - set(sum(parts, [])))
        _require(not lost and len(sum(parts, [])) == n,
                 f"{what}: rows {lost[:8]} are in no part; together the parts must hold every row exactly once")
        for name, part, fraction in zip(names, parts, fractions):
            _require(abs(len(part) - fraction * n) <= 1 + 1e-6,
                     f"{what}: {name} has {len(part)} rows; expected {fraction} * {n} = {fraction * n:g} (within 1)")


def test_split_seeded(student, rng):
    n, fractions = _split_inputs(rng)
    seed = int(rng.integers(0, 2**31))
    other = seed + int(rng.integers(1, 1000))
    first, again, different = (sorted(map(sorted, parts)) for parts in
                               student.run("split", n=n, fractions=fractions, seeds=[seed, seed, other]))
    what = f"train_val_test_split(a dataset of {n} rows, {fractions}, seed=...)"
    _require(first == again, f"{what} gave two different splits for seed={seed}: the split must depend on the seed "
                             "alone (use torch.Generator().manual_seed(seed), not the global random state)")
    _require(first != different, f"{what} gave the same split for seed={seed} and seed={other}: the seed must "
                                 "choose the split")


# ---- fit_linear --------------------------------------------------------------------------------

def _plane(rng, rows, n_features):
    """Noiseless y = x @ w + b with features in [-1, 1] and |y| >= 1, so that 5 % of y is never tiny."""
    w = rng.uniform(-1, 1, size=n_features)
    b = float(rng.choice([-1, 1]) * (np.abs(w).sum() + rng.uniform(1, 3)))
    features = rng.integers(-1000, 1001, size=(rows, n_features)) / 1000
    names = [str(s) for s in rng.choice(NAMES, n_features, replace=False)]
    return _table(rng, features, features @ w + b, names), w, b


def _fit(student, rng, rows, n_features, epochs):
    table, w, b = _plane(rng, rows, n_features)
    batch_size = int(rng.integers(4, 11))
    inputs = dict(epochs=epochs, lr=0.1, batch_size=batch_size)
    what = f"fit_linear({table}, {', '.join(f'{k}={v}' for k, v in inputs.items())})"
    weight, bias = student.run("fit", csv=table.text, name=table.name, **inputs)
    weight, bias = tensor(weight, f"{what} (weight)"), tensor(bias, f"{what} (bias)")
    return table, w, b, what, weight, bias


def test_fit_linear_predictions(student, rng):
    table, w, b, what, weight, bias = _fit(student, rng, int(rng.integers(40, 90)), int(rng.integers(2, 5)), 30)
    truth = f"y = x @ {show(torch.tensor(w, dtype=torch.float32))} + {b:.4g}"
    _require(weight.numel() == table.features.shape[1] and bias.numel() == 1,
             f"{what} returned a weight of shape {list(weight.shape)} and a bias of shape {list(bias.shape)}; "
             f"the file has {table.features.shape[1]} feature columns ({truth})")
    predictions = table.features @ weight.float().reshape(-1) + bias.float().reshape(())
    error = ((predictions - table.y).abs() / table.y.abs()).max().item()
    _require(error <= 0.05,
             f"{what}: the predictions x @ weight + bias miss y by up to {100 * error:.3g} % (limit 5 %) with "
             f"weight {show(weight)} and bias {show(bias)}; the data is exactly {truth}")


def test_fit_linear_returns_float32(student, rng):
    table, w, b, what, weight, bias = _fit(student, rng, int(rng.integers(12, 30)), int(rng.integers(2, 5)), 2)
    n_features = table.features.shape[1]
    for name, value, shape in (("weight", weight, [n_features]), ("bias", bias, [])):
        _require(value.dtype == torch.float32 and list(value.shape) == shape,
                 f"{what} returned a {name} of dtype {str(value.dtype).replace('torch.', '')} and shape "
                 f"{list(value.shape)}; expected float32 and shape {shape}")
