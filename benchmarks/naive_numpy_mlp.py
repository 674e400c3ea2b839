"""The seed's NumPy MLP written plainly, as a student would: the reference for dlexp's run.

Loads the CIFAR-10 python pickles (all 50 000 training images), subtracts the mean image,
trains 3072 -> 100 -> 10 with LeakyReLU 0.02 by SGD (lr 2e-3, batch 200) and evaluates the
whole test set every 100 steps. No tricks: no preallocation, no fused kernels, no cache.

Usage: python benchmarks/naive_numpy_mlp.py DATA_DIR [STEPS] [EVAL_EVERY]
DATA_DIR holds cifar-10-batches-py (or is it).
"""

import os
import pickle
import sys

import numpy as np

data_dir = sys.argv[1]
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
eval_every = int(sys.argv[3]) if len(sys.argv) > 3 else 100
if os.path.isdir(os.path.join(data_dir, "cifar-10-batches-py")):
    data_dir = os.path.join(data_dir, "cifar-10-batches-py")

learning_rate = 2e-3
batch_size = 200
n_hidden = 100
neg_slope = 0.02


def load_batch(filename):
    with open(os.path.join(data_dir, filename), "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    return batch[b"data"], np.array(batch[b"labels"])


xs, ys = [], []
for i in range(1, 6):
    x, y = load_batch(f"data_batch_{i}")
    xs.append(x)
    ys.append(y)
x_train = np.concatenate(xs).astype(np.float32)
y_train = np.concatenate(ys)
x_test, y_test = load_batch("test_batch")
x_test = x_test.astype(np.float32)

mean_image = x_train.mean(axis=0)
x_train -= mean_image
x_test -= mean_image

rng = np.random.default_rng(42)
w1 = (rng.normal(0, 1e-4, size=(3072, n_hidden))).astype(np.float32)
b1 = np.zeros(n_hidden, dtype=np.float32)
w2 = (rng.normal(0, 1e-4, size=(n_hidden, 10))).astype(np.float32)
b2 = np.zeros(10, dtype=np.float32)


def forward(x):
    h = x @ w1 + b1
    a = np.where(h > 0, h, neg_slope * h)
    scores = a @ w2 + b2
    return h, a, scores


def softmax(scores):
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


order = rng.permutation(len(x_train))
position = 0
for step in range(1, steps + 1):
    if position + batch_size > len(x_train):
        order = rng.permutation(len(x_train))
        position = 0
    idx = order[position : position + batch_size]
    position += batch_size
    x, y = x_train[idx], y_train[idx]

    h, a, scores = forward(x)
    probs = softmax(scores)
    one_hot = np.zeros_like(probs)
    one_hot[np.arange(len(y)), y] = 1
    loss = -np.mean(np.sum(one_hot * np.log(probs + 1e-12), axis=1))

    dscores = (probs - one_hot) / len(y)
    dw2 = a.T @ dscores
    db2 = dscores.sum(axis=0)
    da = dscores @ w2.T
    dh = da * np.where(h > 0, 1.0, neg_slope).astype(np.float32)
    dw1 = x.T @ dh
    db1 = dh.sum(axis=0)

    w1 -= learning_rate * dw1
    b1 -= learning_rate * db1
    w2 -= learning_rate * dw2
    b2 -= learning_rate * db2

    if step % eval_every == 0 or step == steps:
        _, _, test_scores = forward(x_test)
        accuracy = np.mean(test_scores.argmax(axis=1) == y_test)
        print(f"step {step}: train loss {loss:.4f}, test accuracy {accuracy:.4f}")
