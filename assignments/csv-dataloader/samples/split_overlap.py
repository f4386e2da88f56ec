# Draws each part of the split independently, so the parts overlap and some rows end up nowhere.
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        df = pd.read_csv(path)
        self.x = torch.tensor(df.drop(columns=[target]).values).float()
        self.y = torch.tensor(df[target].values).float()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_loader(path, batch_size, shuffle):
    return DataLoader(CsvDataset(path), batch_size=batch_size, shuffle=shuffle)


def train_val_test_split(dataset, fractions, seed):
    g = torch.Generator().manual_seed(seed)
    n = len(dataset)
    parts = []
    for fraction in fractions:
        idx = torch.randperm(n, generator=g)[:round(fraction * n)]
        parts.append(Subset(dataset, idx.tolist()))
    return parts


def fit_linear(path, epochs, lr, batch_size):
    loader = make_loader(path, batch_size, True)
    w = torch.zeros(loader.dataset.x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            ((x @ w + b - y) ** 2).mean().backward()
            opt.step()
    return w.detach(), b.detach()
