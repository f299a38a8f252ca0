"""Dissectors: pure functions from a collector file (or a tool's output lines) to table rows."""
