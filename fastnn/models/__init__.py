"""Model zoo built only from public fastnn.nn layers.

Every constructor takes num_classes and in_channels. alexnet, vgg*, googlenet, resnet18–152, resnext*,
wide_resnet50_2 and densenet* have torchvision's state_dict keys, shapes and parameter counts; small_input=True
(or the *_cifar / resnet20–110 models) adapts a net to 28–32 px images.
"""
from fastnn.models.alexnet import AlexNet, alexnet, zfnet
from fastnn.models.densenet import DenseNet, densenet121, densenet161, densenet169, densenet201
from fastnn.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet
from fastnn.models.lenet import LeNet5, lenet5
from fastnn.models.mlp import mlp
from fastnn.models.nin import NiN, nin
from fastnn.models.resnet import (ResNet, preact_resnet18, preact_resnet34, preact_resnet50, preact_resnet101,
                                  preact_resnet152, resnet18, resnet20, resnet32, resnet34, resnet44, resnet50,
                                  resnet56, resnet101, resnet110, resnet152, resnext50_32x4d, resnext101_32x8d,
                                  se_resnet18, se_resnet50, wide_resnet50_2)
from fastnn.models.vgg import (VGG, vgg11, vgg11_bn, vgg11_bn_cifar, vgg11_cifar, vgg13, vgg13_bn, vgg13_bn_cifar,
                               vgg13_cifar, vgg16, vgg16_bn, vgg16_bn_cifar, vgg16_cifar, vgg19, vgg19_bn,
                               vgg19_bn_cifar, vgg19_cifar)
