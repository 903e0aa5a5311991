"""The call centre's pages: one search box, the resident's page, booking on their behalf."""
