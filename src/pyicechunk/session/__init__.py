"""Sessions: a view of a repository at one snapshot that can record changes and commit them.

:class:`Session` and :class:`ForkSession` (:mod:`~pyicechunk.session.facade`) are the public
classes. The engine is split by concern: :mod:`~pyicechunk.session.core` holds a session's state
and runs its operations one at a time; :mod:`~pyicechunk.session.nodes` and
:mod:`~pyicechunk.session.chunks` read the state, :mod:`~pyicechunk.session.writes` records
edits into the change set, and :mod:`~pyicechunk.session.commit` turns a change set into
manifests, a snapshot and a transaction log. :mod:`~pyicechunk.session.context` is what a
session needs from its repository.
"""

from pyicechunk.session.facade import ForkSession, Session
from pyicechunk.session.nodes import NodeInfo

__all__ = ["ForkSession", "NodeInfo", "Session"]
