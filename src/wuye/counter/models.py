"""Models of the counter app."""
