"""Model zoo built only from public fastnn.nn layers."""
from fastnn.models.lenet import LeNet5, lenet5
from fastnn.models.mlp import mlp
