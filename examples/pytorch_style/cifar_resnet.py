"""A CIFAR-style ResNet trained with checkpoint save and resume, in the style of kuangliu/pytorch-cifar
(models/resnet.py and main.py: BasicBlock with a 1x1-conv shortcut, SGD with momentum and weight decay,
CosineAnnealingLR, `--resume` from ./checkpoint/ckpt.pth).

Differences from the original, none of them for fastnn's sake: the data are synthetic CIFAR-shaped images
(3 x 32 x 32, ten classes, a class template plus noise) so that nothing is downloaded; the checkpoint is written
after every epoch and also holds the optimizer and scheduler state_dicts and the RNG state, so that a resumed run
continues exactly where the interrupted one stopped; the network width and depth are arguments.
Runs on PyTorch by changing the import lines.
"""
import argparse
import os

import fastnn as torch
import fastnn.nn as nn
import fastnn.nn.functional as F
import fastnn.optim as optim
from fastnn.utils.data import DataLoader, TensorDataset


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, width=64):
        super(ResNet, self).__init__()
        self.in_planes = width

        self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(block, width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, num_blocks[3], stride=2)
        self.linear = nn.Linear(8 * width * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


def ResNet18(width=64):
    return ResNet(BasicBlock, [2, 2, 2, 2], width=width)


def synthetic_cifar(n, seed):
    """n CIFAR-shaped images: one fixed random template per class plus noise (a learnable, download-free task)."""
    torch.manual_seed(seed)
    templates = torch.randn(10, 3, 32, 32)
    targets = torch.randint(0, 10, (n,))
    inputs = templates[targets] + 2.0 * torch.randn(n, 3, 32, 32)
    return TensorDataset(inputs, targets)


def main(argv=None):
    parser = argparse.ArgumentParser(description='CIFAR-style ResNet training with checkpoints')
    parser.add_argument('--lr', default=0.1, type=float, help='learning rate')
    parser.add_argument('--resume', '-r', action='store_true', help='resume from checkpoint')
    parser.add_argument('--epochs', default=200, type=int, help='train up to this epoch')
    parser.add_argument('--batch-size', default=128, type=int)
    parser.add_argument('--train-size', default=50000, type=int)
    parser.add_argument('--test-size', default=10000, type=int)
    parser.add_argument('--width', default=64, type=int, help='channels of the first stage')
    parser.add_argument('--blocks', default=2, type=int, help='BasicBlocks per stage (2: ResNet-18)')
    parser.add_argument('--checkpoint', default='./checkpoint/ckpt.pth')
    parser.add_argument('--seed', default=0, type=int)
    args = parser.parse_args(argv)

    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    best_acc = 0  # best test accuracy
    start_epoch = 0  # start from epoch 0 or last checkpoint epoch

    # Data
    print('==> Preparing data..')
    trainset = synthetic_cifar(args.train_size, seed=1)
    trainloader = DataLoader(trainset, batch_size=args.batch_size, shuffle=True)
    testset = synthetic_cifar(args.test_size, seed=2)
    testloader = DataLoader(testset, batch_size=100, shuffle=False)
    torch.manual_seed(args.seed)

    # Model
    print('==> Building model..')
    net = ResNet(BasicBlock, [args.blocks] * 4, width=args.width)
    net = net.to(device)

    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=200)

    if args.resume:
        # Load checkpoint into the fresh model, optimizer and scheduler.
        print('==> Resuming from checkpoint..')
        assert os.path.isfile(args.checkpoint), 'Error: no checkpoint file found!'
        checkpoint = torch.load(args.checkpoint)
        net.load_state_dict(checkpoint['net'])
        optimizer.load_state_dict(checkpoint['optimizer'])
        scheduler.load_state_dict(checkpoint['scheduler'])
        torch.set_rng_state(checkpoint['rng_state'])
        best_acc = checkpoint['acc']
        start_epoch = checkpoint['epoch'] + 1

    def train(epoch):
        print('\nEpoch: %d' % epoch)
        net.train()
        train_loss = 0
        correct = 0
        total = 0
        losses = []
        for batch_idx, (inputs, targets) in enumerate(trainloader):
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()

            train_loss += loss.item()
            losses.append(loss.item())
            _, predicted = outputs.max(1)
            total += targets.size(0)
            correct += predicted.eq(targets).sum().item()
        print('Loss: %.3f | Acc: %.3f%% (%d/%d)'
              % (train_loss / (batch_idx + 1), 100. * correct / total, correct, total))
        return losses

    def save_checkpoint(epoch):
        # Called after scheduler.step(), so the saved optimizer lr and scheduler state are the next epoch's.
        print('Saving..')
        state = {
            'net': net.state_dict(),
            'optimizer': optimizer.state_dict(),
            'scheduler': scheduler.state_dict(),
            'rng_state': torch.get_rng_state(),
            'acc': best_acc,
            'epoch': epoch,
        }
        directory = os.path.dirname(args.checkpoint)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        torch.save(state, args.checkpoint)

    def test(epoch):
        nonlocal best_acc
        net.eval()
        test_loss = 0
        correct = 0
        total = 0
        with torch.no_grad():
            for batch_idx, (inputs, targets) in enumerate(testloader):
                inputs, targets = inputs.to(device), targets.to(device)
                outputs = net(inputs)
                loss = criterion(outputs, targets)

                test_loss += loss.item()
                _, predicted = outputs.max(1)
                total += targets.size(0)
                correct += predicted.eq(targets).sum().item()
        acc = 100. * correct / total
        print('Test Loss: %.3f | Acc: %.3f%% (%d/%d)' % (test_loss / (batch_idx + 1), acc, correct, total))
        best_acc = max(best_acc, acc)
        return acc

    history = {}
    for epoch in range(start_epoch, args.epochs):
        losses = train(epoch)
        acc = test(epoch)
        scheduler.step()
        save_checkpoint(epoch)
        history[epoch] = {'train_losses': losses, 'acc': acc}
    return history


if __name__ == '__main__':
    main()
