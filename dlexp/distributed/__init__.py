"""Data-parallel training through torchrun and torch.distributed (docs/distributed.md).

- process_group: where this process stands among the ranks, and its process group;
- launch: the self-launching form, `dlexp-train distributed.nproc_per_node=N`;
- collectives: what the ranks exchange, each named for what they agree on;
- agreement: the stop flag, the evaluation hooks and the config, decided alike on every rank.

The torch backend splits each global batch and shards evaluation (dlexp.backends.torch_ranks);
the commands (dlexp.training, dlexp.cli) start, join and lead the ranks. Nothing here imports
torch until a process joins a group.
"""
