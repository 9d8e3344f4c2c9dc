"""Campaigns (seed 003): a prompt becomes a brief and a contract; iterations sweep it with walk-forward
evaluation on the development bars, a critic refines it, stop criteria end it, and the sealed holdout is
opened once for the chosen candidate's verdict."""
