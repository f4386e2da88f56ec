# Splits with random_split but never uses the seed, so the split changes from call to call.
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, random_split


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        df = pd.read_csv(path)
        self.x = torch.tensor(df.drop(columns=[target]).values, dtype=torch.float32)
        self.y = torch.tensor(df[target].values, dtype=torch.float32)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_loader(path, batch_size, shuffle):
    return DataLoader(CsvDataset(path), batch_size=batch_size, shuffle=shuffle)


def train_val_test_split(dataset, fractions, seed):
    return random_split(dataset, fractions)


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
