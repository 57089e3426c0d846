"""Training: the settings (config), what a run is built from (build), the loop (trainer), starting and
resuming runs (runner), the learning-rate schedule, torchrun (distributed), the budget's choice (budget,
steptime), fine-tuning, sweeps, the allocator and TensorBoard."""
