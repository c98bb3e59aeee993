"""A floor bigger than one machine: workers that share live events over a NATS bus.

``registry`` keeps which worker holds which call and which workers are alive (pure: an
injected clock, no I/O); ``bus`` is the ``ClusterHub``, the in-process ``Hub`` with every
event also published on NATS and every other worker's events delivered to the local
agent and floor streams. See README, "Running a floor".
"""
