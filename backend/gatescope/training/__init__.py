"""Training models with a readout on the tasks (gatescope.tasks), and saving them.

    result = train(TrainConfig(task="delayed_recall:d=20", cell="lstm", hidden=32))
    data = model_bytes(result)          # a .safetensors file: tensors, metadata, model card
"""

from ..core.clipping import clip_grad_norm
from .adam import Adam
from .save import model_bytes, safetensors_bytes
from .trainer import (
                      TrainConfig,
                      TrainResult,
                      evaluate,
                      init_params,
                      loss_and_grads,
                      train,
                      train_step,
)

__all__ = ["Adam", "TrainConfig", "TrainResult", "clip_grad_norm", "evaluate", "init_params",
           "loss_and_grads", "model_bytes", "safetensors_bytes", "train",
           "train_step"]
