"""fastnn.nn: Module, Parameter, layers, losses, init and functional, named as in PyTorch."""
from fastnn.nn import functional, init
from fastnn.nn.modules import *  # noqa: F401,F403
from fastnn.nn.parameter import Parameter
