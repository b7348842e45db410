"""Tests of the Textual app (Pilot, snapshots, a real pseudo-terminal)."""
