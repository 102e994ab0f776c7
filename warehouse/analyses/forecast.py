"""forecast analyses (to be filled in)."""
