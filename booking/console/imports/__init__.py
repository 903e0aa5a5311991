"""Voucher-registry imports from the municipal console (admins)."""
