"""fleet part (see ARCHITECTURE.md)."""
