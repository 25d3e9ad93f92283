"""Simulated plants, faults with ground truth, and recorded streams, for demos, tests and
backtests.

``simulators.plant`` turns a plant configuration into seeded, physically plausible readings of
every sensor (one process model per stack, so sensors of a stack stay consistent);
``simulators.faults`` injects labelled sensor and process faults (``simulators.labels`` keeps
the ground truth); ``simulators.recording`` reads and writes recordings (CSV or JSON lines),
``simulators.record`` takes them from MQTT or a store, ``simulators.replay`` publishes them
again; ``simulators.publisher`` sends readings over MQTT in scaled real time, the way a plant's
data logger would. ``demo_plant.yaml`` (package data) is the plant ``make run`` simulates.
"""
