"""Tests of the HTTP API against a real embedded SQLite store."""
