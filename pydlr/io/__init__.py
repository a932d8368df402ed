"""Saving and loading models: architecture as JSON, weights (and optimizer state) as safetensors."""
