"""The residents' pages: entry (top, login, registration, password), my page, booking."""
