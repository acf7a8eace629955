"""Training: the trainers and their arguments, samplers, checkpoints, optimisation, recipes and the demo."""
