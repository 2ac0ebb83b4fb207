class AuditLogIsAppendOnly(Exception):
    """Raised by any attempt to change or delete an audit entry through the ORM."""
