"""What identifies kitt's report on a pull/merge request (DESIGN §6).

The sticky comment carries a hidden marker, `<!-- kitt-report:ID -->`, as its last line; a later
run with the same ID finds it and updates it in place. Different IDs (matrix jobs, several
workflows) keep separate comments.
"""

from __future__ import annotations

import hashlib
import re

MARKER_PREFIX = "<!-- kitt-report:"
MARKER_SUFFIX = " -->"
DEFAULT_REPORT_ID = "default"
MAX_REPORT_ID_CHARS = 100

# Characters an ID keeps as they are; anything else becomes `_`. `-` is allowed but never two in
# a row (`--` may not appear inside an HTML comment), and `>` never (it could end the comment).
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+=-]")
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]*")


def report_id_problem(report_id: str) -> str | None:
    """Why `report_id` cannot be used as given (for a usage error), or None when it can."""
    if not report_id:
        return "it is empty"
    if len(report_id) > MAX_REPORT_ID_CHARS:
        return f"it is longer than {MAX_REPORT_ID_CHARS} characters"
    if not _VALID_ID.fullmatch(report_id) or "--" in report_id or report_id.endswith("-"):
        return (
            "use letters, digits and . _ : / @ + = - (starting with a letter or digit, "
            "no '--', not ending with '-')"
        )
    return None


def normalize_report_id(report_id: str) -> str:
    """A safe ID for any input (a default derived from CI job names may hold spaces, brackets
    or commas). Valid IDs come back unchanged; others are mapped deterministically, so the same
    input always finds the same comment."""
    if report_id_problem(report_id) is None:
        return report_id
    safe = _UNSAFE.sub("_", report_id.strip())
    safe = re.sub(r"-{2,}", "-", safe).rstrip("-") or DEFAULT_REPORT_ID
    if not safe[0].isalnum():
        safe = "id" + safe
    if len(safe) > MAX_REPORT_ID_CHARS:
        digest = hashlib.sha256(report_id.encode()).hexdigest()[:12]
        safe = f"{safe[: MAX_REPORT_ID_CHARS - 13].rstrip('-')}.{digest}"
    return safe


def report_marker(report_id: str) -> str:
    """The hidden marker of the report with this ID: the last line of the comment body."""
    return f"{MARKER_PREFIX}{normalize_report_id(report_id)}{MARKER_SUFFIX}"
