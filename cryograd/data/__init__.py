"""Readers and writers of real data formats (coming with the data issue)."""
