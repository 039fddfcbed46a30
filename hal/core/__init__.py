"""The active-learning core: run settings, the loop and what it is made of (training strategies,
the switch trigger, query strategies, metrics), per-round records and checkpoints. It runs without
Ray and is given its corpus and learner; every other layer builds on it."""
