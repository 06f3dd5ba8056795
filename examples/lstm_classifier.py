"""Sequence classification with an LSTM, in the style of PyTorch's tutorials (runs on PyTorch by changing the three
import lines below to `import torch`, `from torch import nn, optim`, `from torch.utils.data import ...`).

Task (synthetic, so no download): a sequence of tokens from a vocabulary of 10; the label says whether token 1
occurs more often than token 2. A bag of counts would solve it, but the model has to learn to count with its cell
state. Embedding -> bidirectional LSTM -> Linear on the final hidden states.
"""
import argparse

import fastnn as torch
from fastnn import nn, optim
from fastnn.utils.data import DataLoader, TensorDataset


def make_dataset(n, seq_len, vocab, generator=None):
    x = torch.randint(0, vocab, (n, seq_len), generator=generator)
    y = ((x == 1).sum(dim=1) > (x == 2).sum(dim=1)).long()
    return TensorDataset(x, y)


class LSTMClassifier(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim, num_classes, num_layers=1):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                            bidirectional=True)
        self.fc = nn.Linear(2 * hidden_dim, num_classes)

    def forward(self, tokens):
        embeds = self.embedding(tokens)                     # (batch, seq, embedding_dim)
        _, (h_n, _) = self.lstm(embeds)                     # h_n: (num_layers * 2, batch, hidden_dim)
        final = torch.cat([h_n[-2], h_n[-1]], dim=1)        # last layer, both directions
        return self.fc(final)


def train(model, loader, optimizer, criterion):
    model.train()
    total = 0.0
    for tokens, labels in loader:
        optimizer.zero_grad()
        loss = criterion(model(tokens), labels)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        total += loss.item() * labels.size(0)
    return total / len(loader.dataset)


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    correct = 0
    for tokens, labels in loader:
        correct += (model(tokens).argmax(dim=1) == labels).sum().item()
    return correct / len(loader.dataset)


def main(argv=None):
    parser = argparse.ArgumentParser(description="LSTM sequence classifier (synthetic counting task)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--seq-len", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    train_set = make_dataset(args.train_size, args.seq_len, 10)
    test_set = make_dataset(args.test_size, args.seq_len, 10)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)

    model = LSTMClassifier(10, 16, args.hidden, 2)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    criterion = nn.CrossEntropyLoss()
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        loss = train(model, train_loader, optimizer, criterion)
        accuracy = evaluate(model, test_loader)
        print(f"epoch {epoch}: train loss {loss:.4f}, test accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
