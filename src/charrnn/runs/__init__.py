"""A run on disk: its directory (rundir), checkpoints (checkpoint, state), metrics.csv and progress
(metrics), files written whole (files), the listing `charrnn runs` prints (listing) and plots (plot)."""
