"""Training: the Learner (fit -> epoch -> batch with named events), callbacks, losses, metrics,
optimizers, schedules, the LR finder, resumable checkpoints and distributed (torchrun) training."""

from pydlr.train import losses, optimizers
from pydlr.train.callbacks import (
    BackupAndRestore,
    CSVLogger,
    EarlyStopping,
    KerasCallback,
    LambdaCallback,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
)
from pydlr.train.events import (
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
)
from pydlr.train.history import History
from pydlr.train.learner import Learner
from pydlr.train.lr_find import LRFindResult, lr_find
from pydlr.train.lr_schedules import (
    CosineDecay,
    ExponentialDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
)
from pydlr.train.progress import ProgressBar
from pydlr.train.schedules import (
    LearningRateScheduler,
    ParamScheduler,
    cosine,
    fit_one_cycle,
    one_cycle,
    step,
)

__all__ = [
    "Learner", "History", "Callback", "KerasCallback", "LambdaCallback", "EarlyStopping",
    "ModelCheckpoint", "CSVLogger", "ReduceLROnPlateau", "TerminateOnNaN", "TensorBoard", "BackupAndRestore", "ProgressBar", "CancelFitException",
    "CancelEpochException", "CancelTrainException", "CancelValidException", "CancelBatchException",
    "CancelStepException", "losses", "optimizers", "lr_find", "LRFindResult", "ParamScheduler",
    "LearningRateScheduler", "cosine", "one_cycle", "step", "fit_one_cycle", "LearningRateSchedule",
    "ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay",
]
