"""backlog analyses (to be filled in)."""
