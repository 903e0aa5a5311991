"""Parsing half of the voucher-registry (接種券) import.

Pure Python, no Django: the import service reads a municipality's CSV with
:mod:`booking.registry.csvfile`, turns each record into a validated
:class:`~booking.registry.rows.RegistryRecord` (or a list of row errors) with
:func:`~booking.registry.rows.parse_row`, and finds duplicate voucher numbers with
:class:`~booking.registry.rows.DuplicateVoucherFinder`.
"""
