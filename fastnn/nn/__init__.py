"""fastnn.nn: Module, Parameter, layers, losses, init and functional, named as in PyTorch."""
from fastnn.nn import functional, init
from fastnn.nn.modules import *  # noqa: F401,F403
from fastnn.nn.parameter import Parameter, UninitializedBuffer, UninitializedParameter
from fastnn.nn import utils
from fastnn.nn import regularization
from fastnn.nn.regularization import elastic_net_penalty, l1_penalty, l2_penalty
from fastnn.nn import parallel  # noqa: E402
from fastnn.nn.parallel import DataParallel  # torch.nn.DataParallel(model) is how scripts reach it
