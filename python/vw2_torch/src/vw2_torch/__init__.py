"""vw2_torch: PyTorch twins of vw2's mini models, run as process stages (README.md)."""
