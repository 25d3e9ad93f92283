"""Tests of the ``stream`` package: storage contract, line protocol, InfluxDB error handling."""
