"""Many runs as Ray Tune trials: the sweep spec and flags, the tuners, the trainable, shared
retrain prefixes (planning, forks, the searcher), starting Ray, ranking and the sweep's spend."""
