from fastnn.nn.modules.activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from fastnn.nn.modules.container import ModuleDict, ModuleList, Sequential
from fastnn.nn.modules.conv import Conv2d
from fastnn.nn.modules.linear import Flatten, Identity, Linear
from fastnn.nn.modules.loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from fastnn.nn.modules.module import Module
from fastnn.nn.modules.pooling import AvgPool2d, MaxPool2d

__all__ = [name for name in dir() if name[0].isupper()]
