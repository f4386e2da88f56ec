"""Probes for `csv-dataloader`: run in the student process as probe(submission, **inputs).

Each probe gets the CSV as text and writes it to a file of its own, so the same probe works for the
student (in the scratch directory) and for the reference (in the grader process). DataLoaders and
datasets cannot cross the process boundary: probes iterate them and return tensors, sizes and row ids.
"""

import contextlib
import os
import tempfile

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from grader.harness.compare import describe


@contextlib.contextmanager
def _csv_file(csv, name):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(csv)
        yield path


def dataset(submission, csv, name, rows, target=None):
    """len() and the first `rows` items of CsvDataset(path) (or with target=...)."""
    with _csv_file(csv, name) as path:
        data = submission.CsvDataset(path) if target is None else submission.CsvDataset(path, target=target)
        return {"type": type(data).__name__, "is_dataset": isinstance(data, Dataset), "len": len(data),
                "items": [[describe(value) for value in data[i]] for i in range(rows)]}


def missing_target(submission, csv, name, target):
    with _csv_file(csv, name) as path:
        try:
            submission.CsvDataset(path, target=target)
        except Exception as exc:
            return {"raised": type(exc).__name__, "accepted": isinstance(exc, (ValueError, KeyError)),
                    "message": str(exc)[:300]}
    return {"raised": None}


def loader(submission, csv, name, batch_size, shuffle, epochs):
    """Every batch of `epochs` passes over make_loader(path, batch_size, shuffle)."""
    with _csv_file(csv, name) as path:
        batches = submission.make_loader(path, batch_size, shuffle)
        return {"type": type(batches).__name__, "is_loader": isinstance(batches, DataLoader),
                "epochs": [[list(batch) for batch in batches] for _ in range(epochs)]}


def split(submission, n, fractions, seeds):
    """For each seed, the row ids in each part of train_val_test_split over a dataset of row ids."""
    data = TensorDataset(torch.arange(n))
    result = []
    for seed in seeds:
        parts = submission.train_val_test_split(data, fractions, seed)
        result.append([[int(part[i][0]) for i in range(len(part))] for part in parts])
    return result


def fit(submission, csv, name, epochs, lr, batch_size):
    with _csv_file(csv, name) as path:
        weight, bias = submission.fit_linear(path, epochs, lr, batch_size)
    return [describe(weight), describe(bias)]
