"""Parameter estimation (coming with the assimilation issue)."""
