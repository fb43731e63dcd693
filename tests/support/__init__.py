"""Reusable test infrastructure (scripted servers, fixtures) shared by the test suites."""
