"""Validation experiments that chain the stages (simulate -> reconstruct -> quantify), for tests and docs."""
