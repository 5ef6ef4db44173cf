"""Transaction logs: what one commit changed (FORMAT-V1 §6, FORMAT-V2 §9), used by diff and
rebase.

* :mod:`.model`: :class:`TransactionLog` and :class:`MoveOperation`;
* :mod:`.codec`: :func:`encode_transaction_log` and :func:`decode_transaction_log`;
* :mod:`.v2`: what spec 2 adds (``moved_nodes``).
"""

from pyicechunk.format.transaction_log.codec import (
    decode_transaction_log,
    encode_transaction_log,
)
from pyicechunk.format.transaction_log.model import MoveOperation, TransactionLog, move_sort_key

__all__ = [
    "MoveOperation",
    "TransactionLog",
    "decode_transaction_log",
    "encode_transaction_log",
    "move_sort_key",
]
