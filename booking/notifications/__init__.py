"""Notifications to residents: providers, message rendering, delivery, reminders, LINE Login.

Writes that other parts of the code call are in ``booking.services.notifications``; this
package holds the machinery behind them.
"""
