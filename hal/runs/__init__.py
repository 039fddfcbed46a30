"""One AL run end to end: built from its config (inputs, learner, loop), the files it writes
(records, summary, TensorBoard) and the ``python -m hal run`` command. No Ray."""
