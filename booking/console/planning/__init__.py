"""The console's planning pages: venues, slots (generator, CSV upload, close, cancel), free
slots, reports and the VRS export.

Who may do what (``staff_required`` on every view):

| page | admin | call_centre | venue | auditor |
|---|---|---|---|---|
| venues, slots: list and every write | yes | | | |
| free slots (view) | yes | yes (its own capacity) | yes | yes |
| free-slot CSV | yes | | | |
| reports and their CSVs | yes | | | yes (read-only) |
| VRS export | yes | | | |
"""
