"""Analysis, torch-free."""
