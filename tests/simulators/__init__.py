"""Tests of the plant simulator, the MQTT publisher and the demo plant configuration."""
