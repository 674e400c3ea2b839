"""The loop's two backends, NumPy and torch, each a module with the same build steps.

Each module has `OPTIMIZERS` ({optim.name: class}), `make_scheduler(optimizer, name,
total_steps, **sched keys)`, `prepare_device(device, precision, seed, deterministic)` and
`Backend`, the object `dlexp.loop.fit` drives. `dlexp.build` uses them in that order.
"""
