#!/usr/bin/env bash
# Seed Q2: the torch MLP levers tried on real CIFAR-10, one run each, selected on val/accuracy.
# Usage: DLEXP_DATA=... bash scripts/tune_torch_mlp.sh; then python scripts/summarise_runs.py
#        outputs/tune_torch_mlp/runs prints the table recorded in docs/results.md.
set -euo pipefail
run() { dlexp-train model=torch_mlp task_name=tune_torch_mlp progress=false "$@"; }

run                                                   # the seed's settings (SGD 2e-3, [100], 1500)
run max_steps=6000 eval_freq=500                      # more steps
run optim=adam optim.lr=1e-4 max_steps=6000 eval_freq=500                        # Adam
run optim=adam optim.lr=1e-4 max_steps=6000 eval_freq=500 'model.n_hidden=[512,256]'  # wider+deeper
run optim=adam optim.lr=1e-4 max_steps=6000 eval_freq=500 'model.n_hidden=[512,256]' \
    norm=torch_bn                                                                # + batch norm
run optim=adam optim.lr=1e-4 max_steps=6000 eval_freq=500 'model.n_hidden=[512,256]' \
    norm=torch_bn model.dropout=0.2                                              # + dropout
run optim=adam optim.lr=1e-4 max_steps=6000 eval_freq=500 'model.n_hidden=[512,256]' \
    norm=torch_bn model.dropout=0.2 data.preprocess=standardize                  # + standardize
run optim=adam optim.lr=1e-3 max_steps=6000 eval_freq=500 'model.n_hidden=[512,256]' \
    norm=torch_bn model.dropout=0.2 data.preprocess=standardize optim.weight_decay=1e-4  # lr, L2
