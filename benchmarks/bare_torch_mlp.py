"""The seed's PyTorch MLP as a bare script: the reference for dlexp's torch MLP run.

Loads the CIFAR-10 python pickles (all 50 000 training images), subtracts the mean image,
trains nn.Sequential(3072 -> 100 -> LeakyReLU 0.02 -> 10) by SGD (lr 2e-3, batch 200) on
the whole dataset held on the device, and evaluates the whole test set every 100 steps.

Usage: python benchmarks/bare_torch_mlp.py DATA_DIR [STEPS] [EVAL_EVERY]
"""

import os
import pickle
import sys

import numpy as np
import torch
from torch import nn

data_dir = sys.argv[1]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
eval_every = int(sys.argv[3]) if len(sys.argv) > 3 else 100
if os.path.isdir(os.path.join(data_dir, "cifar-10-batches-py")):
    data_dir = os.path.join(data_dir, "cifar-10-batches-py")
device = "cuda" if torch.cuda.is_available() else "cpu"


def load_batch(filename):
    with open(os.path.join(data_dir, filename), "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    return batch[b"data"], np.array(batch[b"labels"])


xs, ys = zip(*(load_batch(f"data_batch_{i}") for i in range(1, 6)), strict=True)
x_train = np.concatenate(xs).astype(np.float32)
x_test, y_test = load_batch("test_batch")
x_test = x_test.astype(np.float32)
mean_image = x_train.mean(axis=0)
x_train = torch.from_numpy(x_train - mean_image).to(device)
y_train = torch.from_numpy(np.concatenate(ys)).to(device)
x_test = torch.from_numpy(x_test - mean_image).to(device)
y_test = torch.from_numpy(y_test).to(device)

torch.manual_seed(42)
model = nn.Sequential(nn.Linear(3072, 100), nn.LeakyReLU(0.02), nn.Linear(100, 10)).to(device)
for layer in (model[0], model[2]):
    nn.init.normal_(layer.weight, 0.0, 1e-4)
    nn.init.zeros_(layer.bias)
optimizer = torch.optim.SGD(model.parameters(), lr=2e-3)

order = torch.randperm(len(y_train), device=device)
position = 0
for step in range(1, steps + 1):
    if position + 200 > len(y_train):
        order = torch.randperm(len(y_train), device=device)
        position = 0
    idx = order[position : position + 200]
    position += 200
    loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step % eval_every == 0 or step == steps:
        with torch.no_grad():
            accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
        print(f"step {step}: train loss {loss.item():.4f}, test accuracy {accuracy:.4f}")
