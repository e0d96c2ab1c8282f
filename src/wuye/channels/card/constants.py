"""Constants of the bank-card channel."""

CODE = "card"
APPROVED = "00"
"""ISO 8583 response code of an approval (../shared/spec/pos-iso8583.md §5)."""
