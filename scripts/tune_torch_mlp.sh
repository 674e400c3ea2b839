#!/usr/bin/env bash
# Seed Q2: the torch MLP levers tried on real CIFAR-10, one run each, selected on val/accuracy.
# Usage: DLEXP_DATA=... bash scripts/tune_torch_mlp.sh
# Then `python scripts/summarise_runs.py outputs/tune_torch_mlp/runs` prints the table that
# docs/results.md records.
set -euo pipefail
run() { dlexp-train model=torch_mlp task_name=tune_torch_mlp progress=false "$@"; }
long=(max_steps=3000 eval_freq=500)
adam=(optim=adam optim.lr=1e-4)
wide=('model.n_hidden=[512,256]')

run                                                            # the seed's settings
run "${long[@]}"                                               # more steps
run "${long[@]}" "${adam[@]}"                                  # Adam
run "${long[@]}" "${adam[@]}" "${wide[@]}"                     # wider and deeper
run "${long[@]}" "${adam[@]}" "${wide[@]}" norm=torch_bn       # + batch norm
run "${long[@]}" "${adam[@]}" "${wide[@]}" norm=torch_bn model.dropout=0.2   # + dropout
run "${long[@]}" "${adam[@]}" "${wide[@]}" norm=torch_bn model.dropout=0.2 \
    data.preprocess=standardize                                # + per-channel standardisation
