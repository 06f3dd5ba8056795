"""fastnn.optim: optimizers with PyTorch's API; each optimizer's math is a device kernel."""
from fastnn.optim import lr_scheduler, scaling, swa_utils
from fastnn.optim.adadelta import Adadelta
from fastnn.optim.adagrad import Adagrad
from fastnn.optim.adam import Adam, AdamW
from fastnn.optim.adamax import Adamax
from fastnn.optim.asgd import ASGD
from fastnn.optim.lbfgs import LBFGS
from fastnn.optim.nadam import NAdam
from fastnn.optim.optimizer import Optimizer
from fastnn.optim.radam import RAdam
from fastnn.optim.rmsprop import RMSprop
from fastnn.optim.rprop import Rprop
from fastnn.optim.sgd import SGD
from fastnn.optim.sparse_adam import SparseAdam

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "NAdam", "LBFGS", "Adadelta", "Adamax", "RAdam",
           "ASGD", "Rprop", "SparseAdam", "lr_scheduler", "scaling", "swa_utils"]
