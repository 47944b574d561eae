"""Helpers shared by the test suite: real servers on loopback, tiny fixtures."""
