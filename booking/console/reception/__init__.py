"""Reception and vaccination records at a venue (venue staff and admins)."""
