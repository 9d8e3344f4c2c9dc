"""Claude's part: the guarded session (budget ledger, retries, call records), prices, prompts, and the
tool loops through which Claude designs, assesses, and writes a campaign's brief and critiques."""
