"""Tests of the benchmark harness parts that shape what it measures."""
