"""The pipeline steps."""
