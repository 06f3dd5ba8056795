"""Multi-layer perceptron on flattened images."""
from fastnn import nn


def mlp(num_classes=10, in_features=784, hidden=(512, 256), activation=nn.ReLU):
    """Flatten → [Linear → activation] per hidden width → Linear(num_classes). Default: 784-512-256-10."""
    layers, width = [nn.Flatten()], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), activation()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
