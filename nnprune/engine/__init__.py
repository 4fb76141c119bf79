"""Training and measurement."""
