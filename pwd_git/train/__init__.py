"""Training: shards -> model (the "compile the model" step)."""
