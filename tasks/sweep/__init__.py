"""Sweeps: every combination of a contract's optimisation space, evaluated by the backtest's own
interpreter on 2-D arrays (bars x combinations), in chunks of bounded memory, on the selection bars."""
