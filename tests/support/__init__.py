"""Helpers shared by the tests: real brokers, served dashboards, seeded rows. No tests."""
