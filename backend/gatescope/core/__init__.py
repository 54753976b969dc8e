"""The math, in NumPy alone: the cells' step loops (cells/), the layer stack and BPTT
(engine.py), the one-step Jacobians (jacobians.py), losses and the readout, PyTorch's weight
layout and init (params.py), a readable per-step reference (reference.py). Nothing here
knows about requests, files or HTTP."""
