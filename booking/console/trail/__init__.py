"""The audit trail for auditors and admins: browse, filter, breach-scope report, verification."""
