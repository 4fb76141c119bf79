"""The study plan, torch-free."""
