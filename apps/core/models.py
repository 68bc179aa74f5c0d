"""Abstract bases shared by every domain model."""

import uuid

from django.db import models


class PublicModel(models.Model):
    """A model addressed by a random UUID, so URLs never expose counts or order."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True


class WorkspaceOwned(PublicModel):
    """A model that belongs to exactly one workspace; selectors filter on it."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True
