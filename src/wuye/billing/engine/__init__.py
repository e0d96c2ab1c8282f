"""The billing engine: pure calculation, billing runs and their bulk writer."""
