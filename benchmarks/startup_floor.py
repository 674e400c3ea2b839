"""The start-up floor: import torch, build one nn.Linear(3072, 10), take one SGD step.

What any torch training process pays before its work; `bench_startup.py` times dlexp's smoke
runs against it. Usage: python benchmarks/startup_floor.py
"""

import torch
from torch import nn

model = nn.Linear(3072, 10)
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
loss = nn.functional.cross_entropy(model(torch.randn(200, 3072)), torch.randint(0, 10, (200,)))
loss.backward()
optimizer.step()
print(f"loss {loss.item():.4f}")
