# Drops the last partial batch ("so that every batch has the same size").
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, random_split


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        df = pd.read_csv(path)
        self.y = torch.tensor(df[target].values, dtype=torch.float32)
        self.x = torch.tensor(df.drop(columns=target).values, dtype=torch.float32)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_loader(path, batch_size, shuffle):
    return DataLoader(CsvDataset(path), batch_size=batch_size, shuffle=shuffle, drop_last=True)


def train_val_test_split(dataset, fractions, seed):
    return random_split(dataset, fractions, generator=torch.Generator().manual_seed(seed))


def fit_linear(path, epochs, lr, batch_size):
    loader = make_loader(path, batch_size, True)
    weight = torch.zeros(loader.dataset.x.shape[1], requires_grad=True)
    bias = torch.tensor(0.0, requires_grad=True)
    opt = torch.optim.SGD([weight, bias], lr=lr)
    for epoch in range(epochs):
        for x, y in loader:
            loss = torch.mean((x @ weight + bias - y) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return weight.detach(), bias.detach()
