class AuditLogIsAppendOnly(Exception):
    """Raised by any attempt to change or delete an audit entry through the ORM."""


class AuditChainHeadMissing(Exception):
    """The chain head row is gone while audit entries exist: the chain must not restart."""
