"""Hydra's door to dlexp's sweepers, installed as `hydra_plugins.dlexp_sweepers`.

Hydra instantiates a sweeper only if its class lives in the `hydra_plugins` namespace package; the
code lives in dlexp.search. conf/hydra/sweeper/dlexp_*.yaml name these classes.
"""

from dlexp.search import grid_sweeper, optuna_sweeper


class DlexpGridSweeper(grid_sweeper.GridSweeper):
    """`hydra/sweeper=dlexp_grid`: Hydra's grid, composed in full before any job runs."""


class DlexpOptunaSweeper(optuna_sweeper.OptunaSweeper):
    """`hydra/sweeper=dlexp_optuna`: Optuna ask/tell search with pruning."""
