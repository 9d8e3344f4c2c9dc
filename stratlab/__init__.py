"""The `stratlab` command line."""
