"""Settings and database access shared by the whole service."""
