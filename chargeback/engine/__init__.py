"""The engine: rules and contacts in, exact attributed amounts and the ledger out (pure, no I/O)."""
