"""The campaign's evaluator: what makes a verdict resist luck (selection over many trials, overfitting)."""
