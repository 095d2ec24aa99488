"""Forge adapters (VcsHost): GitHub, GitLab and Gitea/Forgejo pull/merge request comments.

One module per forge; adapters/forge/http.py holds what they share (retries, errors).
"""

from __future__ import annotations

from adapters.forge.gitea import GiteaHost
from adapters.forge.github import GitHubHost
from adapters.forge.gitlab import GitLabHost
from adapters.forge.http import ForgeComment, RetryPolicy

__all__ = ["ForgeComment", "GitHubHost", "GitLabHost", "GiteaHost", "RetryPolicy"]
