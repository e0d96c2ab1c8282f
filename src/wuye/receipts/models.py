"""Models of the receipts app."""
