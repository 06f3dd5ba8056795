"""fastnn.train: the fit loop (Trainer, fit) with callbacks, history files and exactly resumable checkpoints."""
from fastnn.train.callbacks import Callback, EarlyStopping, LRMonitor, ModelCheckpoint, TensorBoardLogger
from fastnn.train.trainer import HISTORY_COLUMNS, Trainer, evaluate_metrics, fit

__all__ = ["Trainer", "fit", "evaluate_metrics", "HISTORY_COLUMNS", "Callback", "EarlyStopping", "ModelCheckpoint",
           "LRMonitor", "TensorBoardLogger"]
