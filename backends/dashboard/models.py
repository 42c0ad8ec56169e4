"""What the dashboard keeps beside the API's tables: the names users give their tokens."""

from __future__ import annotations

from django.db import models

from backends.models import Token


class TokenName(models.Model):
    """A user's name for one of their API tokens ("laptop", "lab notebook")."""

    token = models.OneToOneField(Token, on_delete=models.CASCADE, related_name="dashboard_name")
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name
