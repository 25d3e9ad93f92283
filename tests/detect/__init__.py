"""Tests of stream.detect and the detect CLI."""
