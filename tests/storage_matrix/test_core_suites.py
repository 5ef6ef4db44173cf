"""Repository, session and store tests of the core suite, parametrised over storage kinds.

Each imported test runs once per storage kind (memory, local, s3; see conftest.py). Tests whose
subject is not storage (argument validation, reprs, pickling rules) stay in tests/api only.
"""

from __future__ import annotations

from test_repository import (
    test_ancestry_sync_and_async,
    test_branch_errors,
    test_branch_lifecycle,
    test_default_commit_metadata,
    test_diff_between_snapshots,
    test_inspect_snapshot,
    test_lookup_snapshot,
    test_readonly_session_as_of,
    test_readonly_session_by_branch_tag_snapshot,
    test_reset_branch,
    test_reset_branch_to_flushed_snapshot,
    test_tags_are_immutable,
    test_transaction_body_error_does_not_commit,
    test_transaction_commits_on_exit,
)
from test_session import (
    test_amend_initial_snapshot_fails,
    test_amend_replaces_tip,
    test_async_commit_and_flush,
    test_chunk_type,
    test_commit_allow_empty,
    test_commit_metadata,
    test_discard_changes,
    test_flush_creates_detached_snapshot,
    test_merge_forks,
    test_session_after_commit_is_read_only,
    test_status_format,
)
from test_store import (
    test_clear,
    test_delete_chunk_and_node,
    test_delete_dir,
    test_get_and_byte_ranges,
    test_listing,
    test_set_if_not_exists_and_orphan_metadata,
    test_sizes_and_is_empty,
)

__all__ = [
    "test_amend_initial_snapshot_fails",
    "test_amend_replaces_tip",
    "test_ancestry_sync_and_async",
    "test_async_commit_and_flush",
    "test_branch_errors",
    "test_branch_lifecycle",
    "test_chunk_type",
    "test_clear",
    "test_commit_allow_empty",
    "test_commit_metadata",
    "test_default_commit_metadata",
    "test_delete_chunk_and_node",
    "test_delete_dir",
    "test_diff_between_snapshots",
    "test_discard_changes",
    "test_flush_creates_detached_snapshot",
    "test_get_and_byte_ranges",
    "test_inspect_snapshot",
    "test_listing",
    "test_lookup_snapshot",
    "test_merge_forks",
    "test_readonly_session_as_of",
    "test_readonly_session_by_branch_tag_snapshot",
    "test_reset_branch",
    "test_reset_branch_to_flushed_snapshot",
    "test_session_after_commit_is_read_only",
    "test_set_if_not_exists_and_orphan_metadata",
    "test_sizes_and_is_empty",
    "test_status_format",
    "test_tags_are_immutable",
    "test_transaction_body_error_does_not_commit",
    "test_transaction_commits_on_exit",
]
