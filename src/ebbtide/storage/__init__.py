"""storage part (see ARCHITECTURE.md)."""
