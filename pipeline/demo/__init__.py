"""The demo: simulated B2B and B2C traffic driven through the real collector."""
