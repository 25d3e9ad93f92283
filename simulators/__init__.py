"""Simulated plants for demos and tests.

``simulators.plant`` turns a plant configuration into seeded, physically plausible readings of
every sensor (one process model per stack, so sensors of a stack stay consistent);
``simulators.publisher`` sends them over MQTT in scaled real time, the way a plant's data logger
would. ``demo_plant.yaml`` (package data) is the plant ``make run`` simulates.
"""
