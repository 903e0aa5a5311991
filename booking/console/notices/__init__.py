"""The console's notifications section (通知): what needs a person, the pause switch, the
reminder time and senders, the municipality's own wording, and its LINE channel."""
