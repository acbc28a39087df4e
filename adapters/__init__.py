"""Runtime adapters. Only ``knative_func`` is a package of the ``function`` distribution
(Knative func installs the repo root); the other folders are deployed by their platforms."""
