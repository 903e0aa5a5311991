"""Custom checkov policies for terraform/ (checkov loads only folders with this file)."""
