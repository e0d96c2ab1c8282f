"""Cash at the counter: the money goes into the cashier's drawer, change comes back."""
