"""The sync run: each step idempotent and resumable, recorded in the run ledger."""
