"""One counter per client address and minute of wrong tokens."""

from __future__ import annotations

from django.db import models


class FailedAttempts(models.Model):
    """Wrong tokens presented from `client` during `minute` (Unix minutes)."""

    client = models.CharField(max_length=64)
    minute = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "minute"], name="one_counter_a_minute")
        ]
        indexes = [models.Index(fields=["minute"], name="throttle_minute")]

    def __str__(self) -> str:
        return f"{self.client}: {self.count} in minute {self.minute}"
