# Uses every column as a feature, the target included.
import csv

import torch
from torch.utils.data import DataLoader, Dataset, random_split


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        self.columns = list(rows[0].keys())
        self.features = torch.tensor([[float(r[c]) for c in self.columns] for r in rows])
        self.targets = torch.tensor([float(r[target]) for r in rows])

    def __len__(self):
        return self.targets.shape[0]

    def __getitem__(self, i):
        return self.features[i], self.targets[i]


def make_loader(path, batch_size, shuffle):
    return DataLoader(CsvDataset(path), batch_size=batch_size, shuffle=shuffle)


def train_val_test_split(dataset, fractions, seed):
    return random_split(dataset, fractions, generator=torch.Generator().manual_seed(seed))


def fit_linear(path, epochs, lr, batch_size):
    loader = make_loader(path, batch_size, shuffle=True)
    weight = torch.zeros(len(loader.dataset.columns), requires_grad=True)
    bias = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.SGD([weight, bias], lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            loss = ((x @ weight + bias - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return weight.detach(), bias.detach()
