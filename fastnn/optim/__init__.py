"""fastnn.optim: optimizers with PyTorch's API; each optimizer's math is a device kernel."""
from fastnn.optim import lr_scheduler, scaling, swa_utils
from fastnn.optim.adagrad import Adagrad
from fastnn.optim.adam import Adam, AdamW
from fastnn.optim.lbfgs import LBFGS
from fastnn.optim.nadam import NAdam
from fastnn.optim.optimizer import Optimizer
from fastnn.optim.rmsprop import RMSprop
from fastnn.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "NAdam", "LBFGS", "lr_scheduler", "scaling",
           "swa_utils"]
