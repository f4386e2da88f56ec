import csv
import torch
from torch.utils.data import Dataset, DataLoader, Subset


class CsvDataset(Dataset):
    def __init__(self, path, target="y"):
        with open(path) as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = [[float(v) for v in row] for row in reader if row]
        if target not in header:
            raise KeyError(f"target column {target} is not one of {header}")
        t = header.index(target)
        data = torch.tensor(rows, dtype=torch.float32)
        self.X = torch.cat([data[:, :t], data[:, t + 1:]], dim=1)
        self.y = data[:, t]

    def __len__(self):
        return self.X.shape[0]

    def __getitem__(self, idx):
        return self.X[idx], self.y[idx]


def make_loader(path, batch_size, shuffle):
    return DataLoader(CsvDataset(path), batch_size=batch_size, shuffle=shuffle, drop_last=False)


def train_val_test_split(dataset, fractions, seed):
    n = len(dataset)
    g = torch.Generator()
    g.manual_seed(seed)
    perm = torch.randperm(n, generator=g).tolist()
    n_train = int(fractions[0] * n)
    n_val = int(fractions[1] * n)
    train = Subset(dataset, perm[:n_train])
    val = Subset(dataset, perm[n_train:n_train + n_val])
    test = Subset(dataset, perm[n_train + n_val:])
    return train, val, test


def fit_linear(path, epochs, lr, batch_size):
    data = CsvDataset(path)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    w = torch.zeros(data.X.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for epoch in range(epochs):
        for xb, yb in loader:
            loss = torch.mean((xb @ w + b - yb) ** 2)
            loss.backward()
            with torch.no_grad():
                w -= lr * w.grad
                b -= lr * b.grad
            w.grad.zero_()
            b.grad.zero_()
        if epoch % 10 == 0:
            print(epoch, loss.item())
    return w.detach(), b.detach()[0]
