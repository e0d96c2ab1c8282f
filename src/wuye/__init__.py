"""Wuye (物业): billing, counter payments and reconciliation for property-management companies."""

__version__ = "0.1.0"
