"""A run's life: its folder and record (metrics.json, status), checkpoints and resume, stop
signals, timing and cores, and the loggers (TensorBoard, CSV, MLflow, HParams, final figures)."""
