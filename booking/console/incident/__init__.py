"""Incident mode and the console's allowed networks (the municipality's admins)."""
