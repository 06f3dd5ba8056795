"""A variational autoencoder in the style of pytorch/examples vae/main.py, on Fashion-MNIST.

Runs on PyTorch + torchvision by changing the import lines and passing --data-root. The original's
torchvision.utils.save_image of reconstructions and samples is left out (fastnn has no image-grid writer); the
script returns the losses and the decoded samples instead.
"""
import argparse

import fastnn as torch
import fastnn.nn.functional as F
from fastnn import nn, optim
from fastnn.data import transforms
import fastnn.data as datasets


class VAE(nn.Module):
    def __init__(self, hidden=400, latent=20):
        super(VAE, self).__init__()

        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')

    # see Appendix B from VAE paper:
    # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # https://arxiv.org/abs/1312.6114
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    return BCE + KLD


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader),
                loss.item() / len(data)))

    average = train_loss / len(train_loader.dataset)
    print('====> Epoch: {} Average loss: {:.4f}'.format(epoch, average))
    return average


def test(args, model, device, test_loader, epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n], recon_batch.view(data.size(0), 1, 28, 28)[:n]])
                assert tuple(comparison.shape) == (2 * n, 1, 28, 28)

    test_loss /= len(test_loader.dataset)
    print('====> Test set loss: {:.4f}'.format(test_loss))
    return test_loss


def main(argv=None):
    parser = argparse.ArgumentParser(description='VAE Fashion-MNIST Example')
    parser.add_argument('--batch-size', type=int, default=128, metavar='N')
    parser.add_argument('--epochs', type=int, default=10, metavar='N')
    parser.add_argument('--no-accel', action='store_true', help='disables accelerator')
    parser.add_argument('--seed', type=int, default=1, metavar='S')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N')
    parser.add_argument('--data-root', default=None)
    parser.add_argument('--train-size', type=int, default=None, help='use the first N training images')
    parser.add_argument('--test-size', type=int, default=None, help='use the first N test images')
    parser.add_argument('--hidden', type=int, default=400)
    parser.add_argument('--latent', type=int, default=20)
    args = parser.parse_args(argv)

    use_accel = not args.no_accel and torch.accelerator.is_available()
    torch.manual_seed(args.seed)
    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    transform = transforms.ToTensor()
    train_set = datasets.FashionMNIST(args.data_root, train=True, download=True, transform=transform)
    test_set = datasets.FashionMNIST(args.data_root, train=False, download=True, transform=transform)
    if args.train_size is not None:
        train_set = torch.utils.data.Subset(train_set, range(args.train_size))
    if args.test_size is not None:
        test_set = torch.utils.data.Subset(test_set, range(args.test_size))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=args.batch_size, shuffle=False)

    model = VAE(args.hidden, args.latent).to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)

    train_losses, test_losses = [], []
    for epoch in range(1, args.epochs + 1):
        train_losses.append(train(args, model, device, train_loader, optimizer, epoch))
        test_losses.append(test(args, model, device, test_loader, epoch))
        with torch.no_grad():
            sample = torch.randn(64, args.latent).to(device)
            sample = model.decode(sample).cpu()
            samples = sample.view(64, 1, 28, 28)
    return train_losses, test_losses, samples


if __name__ == '__main__':
    main()
