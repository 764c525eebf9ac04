"""Internal utilities shared by the layers (validation, torch helpers, test configs)."""
