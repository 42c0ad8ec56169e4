"""Admin forms: a provider's login edited as JSON but never shown back in clear."""

from __future__ import annotations

from typing import Any

from django import forms

from storage_providers.registry import MASK, login_help

from .models import StorageProviderDb


class StorageProviderForm(forms.ModelForm):
    """Validation is the model's `clean()`; this only keeps secrets out of the page."""

    class Meta:
        model = StorageProviderDb
        fields = ["name", "storage_type", "description", "owner", "is_active", "login"]
        help_texts = {"login": login_help()}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["login"] = self.instance.masked_login

    def clean_login(self) -> Any:
        """Secrets left masked keep their stored value."""
        login = self.cleaned_data.get("login")
        stored = self.instance.login if self.instance.pk else None
        if isinstance(login, dict) and isinstance(stored, dict):
            login = {k: stored.get(k, v) if v == MASK else v for k, v in login.items()}
        return login
