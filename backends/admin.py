"""The operators' admin: providers, tokens (plaintext shown once), the read-only job ledger
and per-user quotas."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .auth import issue_token
from .cache import clear_all
from .forms import StorageProviderForm
from .models import Job, StorageProviderDb, Token, UserQuota


@admin.register(StorageProviderDb)
class StorageProviderAdmin(admin.ModelAdmin):
    form = StorageProviderForm
    list_display = ["name", "storage_type", "is_active", "owner", "masked_login_text"]
    list_filter = ["storage_type", "is_active"]
    search_fields = ["name", "description"]

    @admin.display(description="login")
    def masked_login_text(self, obj: StorageProviderDb) -> str:
        return json.dumps(obj.masked_login)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        super().save_model(request, obj, form, change)
        clear_all()  # this worker sees the change at once; the others within CACHE_SECONDS


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ["short_key", "user", "is_active", "created_at", "storage_provider"]
    list_filter = ["is_active"]
    search_fields = ["user__username"]
    fields = ["user", "storage_provider", "is_active", "created_at"]
    readonly_fields = ["created_at"]
    actions = ["activate", "deactivate"]

    @admin.display(description="key digest")
    def short_key(self, obj: Token) -> str:
        return f"{obj.key[:12]}…"

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if change:
            super().save_model(request, obj, form, change)
        else:
            token, plaintext = issue_token(obj.user, obj.storage_provider)
            obj.pk, obj.key = token.pk, token.key
            if not obj.is_active:
                Token.objects.filter(pk=token.pk).update(is_active=False)
            messages.warning(
                request,
                f"New token for {obj.user}: {plaintext} — copy it now, it is not shown again.",
            )
        clear_all()

    @admin.action(description="Activate selected tokens")
    def activate(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        queryset.update(is_active=True)
        clear_all()

    @admin.action(description="Deactivate selected tokens")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        queryset.update(is_active=False)
        clear_all()


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "job_id",
        "backend_name",
        "owner",
        "status",
        "submitted_at",
        "started_at",
        "finished_at",
        "shots",
        "experiments",
        "cancel_requested_at",
    ]
    list_filter = ["status", "storage_provider", "display_name"]
    search_fields = ["job_id", "owner__username"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    """Per-user limits over the QUOTA_* settings."""

    list_display = ["user", "max_queued_jobs", "max_posts_per_minute"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]
