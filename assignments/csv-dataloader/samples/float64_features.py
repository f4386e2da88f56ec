# Keeps numpy's float64 for the features, and so trains a float64 model.
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, random_split


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        with open(path) as f:
            header = f.readline().strip().split(",")
        if target not in header:
            raise ValueError(f"column {target} not found")
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        t = header.index(target)
        self.X = torch.from_numpy(np.delete(data, t, axis=1))
        self.y = torch.tensor(data[:, t], dtype=torch.float32)

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, idx):
        return self.X[idx], self.y[idx]


def make_loader(path, batch_size, shuffle):
    return DataLoader(CsvDataset(path), batch_size=batch_size, shuffle=shuffle)


def train_val_test_split(dataset, fractions, seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return random_split(dataset, fractions, generator=g)


def fit_linear(path, epochs, lr, batch_size):
    loader = make_loader(path, batch_size, shuffle=True)
    n = loader.dataset.X.shape[1]
    weight = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([weight, bias], lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            p = x @ weight + bias
            loss = ((p - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return weight.detach(), bias.detach()
