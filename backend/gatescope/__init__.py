"""gatescope: every gate, state and gradient of an RNN, LSTM or GRU, step by step.

The Python API:

    import gatescope
    result = gatescope.run({"cell": "lstm", "hidden_size": 8, "input": {"text": "hello"}})
    result.layers[0].gates["f"]        # (T, H) forget-gate values, NumPy
    result.to_json()                   # the /api/v1/run response as plain data
    gatescope.jacobian({...}, step=3)  # the H×H matrices of ∂c_t/∂c_{t−1} at step 3
    model = gatescope.from_torch(net)  # a torch.nn.Module: embedding, RNN, head found
    model.run({"input": {"tokens": [1, 2]}})  # gradients under net's own parameter names
    gatescope.Client("http://127.0.0.1:8000").run({...})  # the same RunResult, from a server
"""

from importlib.metadata import PackageNotFoundError, version

from .client import Client, ServerError
from .contract.errors import ModelNotFoundError
from .contract.results import BatchResult, JacobianResult, LayerResult, RunResult
from .contract.schemas import JacobianRequest, RunRequest
from .runner import jacobian, run, run_batch
from .runner.from_torch import TorchModel, from_torch

try:
    __version__ = version("gatescope")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BatchResult",
    "Client",
    "JacobianRequest",
    "JacobianResult",
    "LayerResult",
    "ModelNotFoundError",
    "RunRequest",
    "RunResult",
    "ServerError",
    "TorchModel",
    "__version__",
    "from_torch",
    "jacobian",
    "run",
    "run_batch",
]
