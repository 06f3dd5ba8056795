"""A convnet with Adadelta and StepLR in the style of pytorch/examples mnist/main.py, on Fashion-MNIST.

Runs on PyTorch + torchvision by changing the import lines (`import torch`, `from torch import nn, optim`,
`import torch.nn.functional as F`, `from torch.optim.lr_scheduler import StepLR`,
`from torchvision import datasets, transforms`) and passing --data-root (torchvision needs a directory).
--data-root defaults to None: fastnn reads Debian's full Fashion-MNIST when installed, else its embedded subset.
"""
import argparse

import fastnn as torch
import fastnn.nn.functional as F
from fastnn import nn, optim
from fastnn.optim.lr_scheduler import StepLR
from fastnn.data import transforms
import fastnn.data as datasets


class Net(nn.Module):
    def __init__(self, width=32):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, width, 3, 1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(12 * 12 * 2 * width, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)
    accuracy = correct / len(test_loader.dataset)
    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset), 100. * accuracy))
    return test_loss, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description='PyTorch-style Fashion-MNIST Example')
    parser.add_argument('--batch-size', type=int, default=64, metavar='N')
    parser.add_argument('--test-batch-size', type=int, default=1000, metavar='N')
    parser.add_argument('--epochs', type=int, default=14, metavar='N')
    parser.add_argument('--lr', type=float, default=1.0, metavar='LR')
    parser.add_argument('--gamma', type=float, default=0.7, metavar='M', help='Learning rate step gamma')
    parser.add_argument('--no-accel', action='store_true', help='disables accelerator')
    parser.add_argument('--dry-run', action='store_true', help='quickly check a single pass')
    parser.add_argument('--seed', type=int, default=1, metavar='S')
    parser.add_argument('--log-interval', type=int, default=10, metavar='N')
    parser.add_argument('--save-model', action='store_true')
    parser.add_argument('--data-root', default=None)
    parser.add_argument('--train-size', type=int, default=None, help='use the first N training images')
    parser.add_argument('--test-size', type=int, default=None, help='use the first N test images')
    parser.add_argument('--width', type=int, default=32, help='channels of the first convolution')
    args = parser.parse_args(argv)

    use_accel = not args.no_accel and torch.accelerator.is_available()

    torch.manual_seed(args.seed)

    if use_accel:
        device = torch.accelerator.current_accelerator()
    else:
        device = torch.device("cpu")

    train_kwargs = {'batch_size': args.batch_size, 'shuffle': True}
    test_kwargs = {'batch_size': args.test_batch_size}
    if use_accel:
        accel_kwargs = {'num_workers': 1, 'persistent_workers': True, 'pin_memory': True}
        train_kwargs.update(accel_kwargs)
        test_kwargs.update(accel_kwargs)

    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.2860,), (0.3530,))
    ])
    dataset1 = datasets.FashionMNIST(args.data_root, train=True, download=True, transform=transform)
    dataset2 = datasets.FashionMNIST(args.data_root, train=False, download=True, transform=transform)
    if args.train_size is not None:
        dataset1 = torch.utils.data.Subset(dataset1, range(args.train_size))
    if args.test_size is not None:
        dataset2 = torch.utils.data.Subset(dataset2, range(args.test_size))
    train_loader = torch.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = torch.utils.data.DataLoader(dataset2, **test_kwargs)

    model = Net(args.width).to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)

    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    history = []
    for epoch in range(1, args.epochs + 1):
        losses = train(args, model, device, train_loader, optimizer, epoch)
        test_loss, accuracy = test(model, device, test_loader)
        history.append({'train_losses': losses, 'test_loss': test_loss, 'accuracy': accuracy,
                        'lr': optimizer.param_groups[0]['lr']})
        scheduler.step()

    if args.save_model:
        torch.save(model.state_dict(), "fashion_mnist_cnn.pt")
    return history


if __name__ == '__main__':
    main()
