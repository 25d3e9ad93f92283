"""Tests of the MQTT collector: payload decoding, rejection accounting, broker integration."""
