"""Query strategies: which unlabeled pool examples to label next (``registry`` names them)."""
