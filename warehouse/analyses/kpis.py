"""kpis analyses (to be filled in)."""
