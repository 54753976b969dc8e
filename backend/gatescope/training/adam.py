"""torch.optim.Adam in NumPy, operation for operation (clip_grad_norm_ is core/clipping.py).

Adam with PyTorch's defaults (betas (0.9, 0.999), eps 1e−8, no weight decay, not AMSGrad),
step t = 1, 2, …:

    m_t = m_{t−1} + (1 − β1)(g − m_{t−1})          exp_avg.lerp_(grad, 1 − β1)
    v_t = β2 v_{t−1} + (1 − β2) g ⊙ g              exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1 − β2)
    θ_t = θ_{t−1} − (lr / (1 − β1^t)) m_t / (√v_t / √(1 − β2^t) + eps)

The scalars are Python floats (doubles) as in torch; the arrays keep the parameters' dtype,
so float32 training stays float32 (NumPy 2 casts a Python float to the array's dtype).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

Tensors = dict[str, np.ndarray]


class Adam:
    """The optimiser's state: the moments m, v of every parameter, and the step count."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.t = 0
        self.m: Tensors = {name: np.zeros_like(p) for name, p in params.items()}
        self.v: Tensors = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, params: Tensors, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place from its gradient (same names, shapes, dtype)."""
        self.t += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self.t)  # lr / bias_correction1
        bc2_sqrt = (1 - beta2 ** self.t) ** 0.5
        for name, p in params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            m += (1 - beta1) * (g - m)  # lerp with weight < 0.5: self + w (end − self)
            v *= beta2
            v += (1 - beta2) * g * g
            denom = np.sqrt(v) / bc2_sqrt + self.eps
            p -= step_size * m / denom
