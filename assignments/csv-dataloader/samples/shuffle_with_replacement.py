# "Shuffles" by sampling rows with replacement, so an epoch repeats some rows and never shows others.
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, random_split


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        df = pd.read_csv(path)
        features = df.drop(columns=[target])
        self.x = torch.tensor(features.to_numpy(), dtype=torch.float32)
        self.y = torch.tensor(df[target].to_numpy(), dtype=torch.float32)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_loader(path, batch_size, shuffle):
    dataset = CsvDataset(path)
    if shuffle:
        return DataLoader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, replacement=True))
    return DataLoader(dataset, batch_size=batch_size)


def train_val_test_split(dataset, fractions, seed):
    return random_split(dataset, fractions, generator=torch.Generator().manual_seed(seed))


def fit_linear(path, epochs, lr, batch_size):
    loader = make_loader(path, batch_size, shuffle=True)
    weight = torch.zeros(loader.dataset.x.shape[1], requires_grad=True)
    bias = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.SGD([weight, bias], lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            loss = ((x @ weight + bias - y) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return weight.detach(), bias.detach()
