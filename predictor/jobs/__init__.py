"""Offline jobs: synthetic data (datagen), point-in-time training (train) with its drift
baseline (baseline), and batch scoring into the online store with Ray (batch)."""
