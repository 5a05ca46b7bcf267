"""The documents: the ledger files, statements, summaries and the CS-value report."""
