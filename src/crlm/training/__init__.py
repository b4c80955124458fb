"""Training: device choice, the loop, checkpoints and resume."""
