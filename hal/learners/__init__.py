"""Model backends with one interface: reset, fit on indices, predict probabilities."""
