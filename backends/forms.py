"""Admin forms: a provider's login edited as JSON but never shown back in clear."""

from __future__ import annotations

from django import forms

from .models import StorageProviderDb


class StorageProviderForm(forms.ModelForm):
    """Validation is the model's `clean()`; this only keeps secrets out of the page."""

    class Meta:
        model = StorageProviderDb
        fields = ["name", "storage_type", "description", "owner", "is_active", "login"]
        help_texts = {
            "login": (
                'local: {"base_path": "/srv/qlued"}; mongodb: {"mongodb_username", '
                '"mongodb_password", "mongodb_database_url"}; dropbox: {"app_key", '
                '"app_secret", "refresh_token"}.'
            )
        }
