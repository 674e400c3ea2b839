"""Data-parallel training through torchrun and torch.distributed (docs/distributed.md).

- ranks: where this process stands among the ranks, and its process group;
- launch: the self-launching form, `dlexp-train distributed.nproc_per_node=N`;
- collectives: what the ranks exchange, each named for what they agree on;
- agreement: the stop flag and the evaluation hooks, decided alike on every rank.

The torch backend splits each global batch and shards evaluation (dlexp.backends.torch_ranks);
the run's face (dlexp.training) starts, joins and leads the ranks.
"""
