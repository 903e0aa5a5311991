"""The residents' site (``<municipality>.<base-domain>/``): login in the municipality's mode,
my page, booking, change and cancellation. Opened from the LINE rich menu too (``/line/``).
"""
