"""Reference solution for `csv-dataloader`."""

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, random_split


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        frame = pd.read_csv(path)
        if target not in frame.columns:
            raise ValueError(f"{path} has no target column {target!r} (columns: {', '.join(frame.columns)})")
        self.features = torch.tensor(frame.drop(columns=[target]).to_numpy(), dtype=torch.float32)
        self.target = torch.tensor(frame[target].to_numpy(), dtype=torch.float32)

    def __len__(self):
        return len(self.target)

    def __getitem__(self, index):
        return self.features[index], self.target[index]


def make_loader(path, batch_size, shuffle):
    return DataLoader(CsvDataset(path), batch_size=batch_size, shuffle=shuffle)


def train_val_test_split(dataset, fractions, seed):
    return tuple(random_split(dataset, list(fractions), generator=torch.Generator().manual_seed(seed)))


def fit_linear(path, epochs, lr, batch_size):
    loader = make_loader(path, batch_size, shuffle=True)
    weight = torch.zeros(loader.dataset.features.shape[1], requires_grad=True)
    bias = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.SGD([weight, bias], lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            loss = ((x @ weight + bias - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return weight.detach(), bias.detach()
