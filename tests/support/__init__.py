"""Helpers shared by the scripts under tests/ that run the real system (chaos, soak)."""
