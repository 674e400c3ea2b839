#!/usr/bin/env bash
# Seed §1.2: how much of the NumPy MLP's final test accuracy is seed noise. Four 20-seed sweeps
# at the seed's hyperparameters (about 20 minutes on a 2-core CPU, the float64 one the longest).
# Usage: DLEXP_DATA=... bash scripts/seed_spread.sh
# Then `python scripts/seed_spread_table.py outputs/seedspread_*/multiruns/*` prints the table
# that docs/results.md records.
set -euo pipefail
sweep() { dlexp-train -m 'seed=range(1,21)' progress=false "$@"; }

sweep task_name=seedspread_val5000                        # the default: 45 000 training images
sweep task_name=seedspread_f64 model.dtype=float64        # the same in float64
sweep task_name=seedspread_torch model=torch_mlp          # autograd instead of the NumPy backward
sweep task_name=seedspread_val0 data.validation_size=0 optimized_metric=train/accuracy  # 50 000
