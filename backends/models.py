"""Storage providers, API tokens and the ledger of submitted jobs (SPEC §5)."""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import connections, models, router
from django.db.models.sql import InsertQuery
from django.utils import timezone

from storage_providers.registry import KINDS, LoginError, check_login, masked_login

name_validator = RegexValidator(
    r"^[a-z0-9]+$", "Use lowercase letters and digits only (no spaces, no underscores)."
)


# The storage types and their labels come from the one registry of storage_providers.
StorageType = models.TextChoices(  # type: ignore[misc]
    "StorageType", [(kind.upper(), (kind, k.label)) for kind, k in KINDS.items()]
)


class StorageProviderDb(models.Model):
    """A storage that backends (spoolers) read their queue from; its name prefixes backend names."""

    storage_type = models.CharField(max_length=20, choices=StorageType.choices)
    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    is_active = models.BooleanField(default=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    description = models.CharField(max_length=500, blank=True, default="")
    login = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "storage provider"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(storage_type__in=StorageType.values), name="known_storage_type"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.storage_type})"

    def full_clean(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Django's, except that a message both the field and `clean()` give is shown once."""
        try:
            super().full_clean(*args, **kwargs)
        except ValidationError as exc:
            once = {field: list(dict.fromkeys(msgs)) for field, msgs in exc.message_dict.items()}
            raise ValidationError(once) from None

    def clean_fields(self, exclude=None):  # type: ignore[no-untyped-def]
        """Lower-case the typed name before the field validators see it (SPEC §2)."""
        self.name = (self.name or "").strip().lower()
        super().clean_fields(exclude)

    def clean(self) -> None:
        """Lower-case the typed name, then check it and that the login fits the type."""
        self.name = (self.name or "").strip().lower()
        errors: dict[str, str] = {}
        try:
            name_validator(self.name)
        except ValidationError as exc:
            errors["name"] = exc.messages[0]
        try:
            check_login(self.storage_type, self.login)
        except LoginError as exc:
            errors["login"] = str(exc)
        if errors:
            raise ValidationError(errors)

    @property
    def masked_login(self) -> dict:
        """The login with its secrets hidden, for lists and logs."""
        return masked_login(self.storage_type, self.login)


def token_digest(plaintext: str) -> str:
    """The only form in which a token is stored and compared."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


class Token(models.Model):
    """An API token; `key` holds its SHA-256 digest, never the token itself."""

    key = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)
    is_active = models.BooleanField(default=True)
    storage_provider = models.ForeignKey(
        StorageProviderDb,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text="Informational only: a token is valid for every provider.",
    )

    def __str__(self) -> str:
        return f"token {self.key[:8]}… of {self.user}"


class JobStatus(models.TextChoices):
    """Where a job stands, as the jobs API tells it (the v2 status document says less)."""

    INITIALIZING = "INITIALIZING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


OPEN_STATUSES = (JobStatus.INITIALIZING, JobStatus.QUEUED, JobStatus.RUNNING)


class JobManager(models.Manager["Job"]):
    """`Job.objects`, with the INSERT of post_job's ledger row compiled once."""

    def record(self, **values: Any) -> Job:
        """`create(**values)` for the ledger row of a post, at a fraction of its CPU.

        `create` compiles its INSERT anew every time, and that was a fifth of a post's
        CPU (py-spy, fsync off). Here the statement is compiled by Django once per
        database; each value is prepared by its own field, as `create` would. An id
        already recorded raises IntegrityError, as `create` does. No model signals are
        sent (nothing listens for the ledger's).
        """
        job = self.model(**values)
        alias = router.db_for_write(self.model)
        connection = connections[alias]
        statement, fields, returns_pk = _job_insert(alias)
        params = [f.get_db_prep_save(f.pre_save(job, True), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            if returns_pk:
                job.pk = cursor.fetchone()[0]
            else:
                meta = self.model._meta
                job.pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
        job._state.adding, job._state.db = False, alias
        return job


@cache
def _job_insert(alias: str) -> tuple[str, list[models.Field], bool]:
    """The INSERT of one Job on database `alias`, its fields in order, and whether it
    returns the new id itself (RETURNING) or the driver is asked for it after."""
    connection = connections[alias]
    meta = Job._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
    query = InsertQuery(Job)
    query.insert_values(fields, [Job()])
    compiler = query.get_compiler(connection=connection)
    returns_pk = connection.features.can_return_columns_from_insert
    compiler.returning_fields = [meta.pk] if returns_pk else None
    [(statement, _params)] = compiler.as_sql()
    return statement, fields, returns_pk


class Job(models.Model):
    """The ledger of submitted jobs: who may see which job (SPEC §4, improvements).

    Its status and times are a cache of what storage says, refreshed when the jobs API
    looks; jobs that have ended are never looked up in storage again.
    """

    job_id = models.CharField(max_length=300)  # Dropbox ids reach 273 characters
    storage_provider = models.ForeignKey(StorageProviderDb, on_delete=models.CASCADE)
    display_name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    submitted_at = models.DateTimeField(default=timezone.now)
    backend_name = models.CharField(
        max_length=220, blank=True, default="", help_text="The full name the job was posted to."
    )
    status = models.CharField(
        max_length=12, choices=JobStatus.choices, default=JobStatus.INITIALIZING
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    shots = models.BigIntegerField(
        null=True, blank=True, help_text="Summed over the experiments (empty: not known)."
    )
    experiments = models.PositiveIntegerField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    objects = JobManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["storage_provider", "job_id"], name="unique_job"),
            models.CheckConstraint(
                condition=models.Q(status__in=JobStatus.values), name="known_job_status"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-submitted_at"]),
            models.Index(fields=["owner", "status"], name="job_owner_status"),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} on {self.storage_provider_id}/{self.display_name}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class IdempotencyKey(models.Model):
    """A post_job answer remembered under the caller's Idempotency-Key for a day.

    The unique constraint decides which of two concurrent posts with one key creates
    the job; `response` stays empty until that post has its answer.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the backend and job.")
    created_at = models.DateTimeField(default=timezone.now)
    # The answer's JSON as sent, so that a replay is the same bytes (PostgreSQL's jsonb
    # would reorder the keys); empty while the first post is still being answered.
    response = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="unique_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"idempotency key {self.key!r} of {self.owner_id}"


class UserQuota(models.Model):
    """One user's own limits; an empty field falls back to the setting, 0 means no limit."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )
    max_queued_jobs = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Jobs queued or running at once (empty: QUOTA_QUEUED_JOBS; 0: no limit).",
    )
    max_posts_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Jobs posted per minute (empty: QUOTA_POSTS_PER_MINUTE; 0: no limit).",
    )

    class Meta:
        verbose_name = "user quota"

    def __str__(self) -> str:
        return f"quota of {self.user}"
