"""The data: contact and order exports read lazily and checked against the contract."""
