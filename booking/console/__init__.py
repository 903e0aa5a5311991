"""The municipal console: staff login, invitations, staff accounts (``/console/``)."""
