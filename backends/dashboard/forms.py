"""The dashboard's forms; the domain's own checks (job shape, quotas) stay in the services."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from backends.models import JobStatus

TEXT = {"autocomplete": "off", "spellcheck": "false"}


class TokenLoginForm(forms.Form):
    token = forms.CharField(
        label="API token", max_length=512, widget=forms.PasswordInput(attrs=TEXT), strip=True
    )


class JobFilterForm(forms.Form):
    """The jobs API's filters, as GET parameters of My jobs."""

    status = forms.ChoiceField(required=False, choices=[("", "any status"), *JobStatus.choices])
    backend = forms.ChoiceField(required=False, choices=[])
    submitted_after = forms.DateTimeField(
        required=False,
        label="Submitted after (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    submitted_before = forms.DateTimeField(
        required=False,
        label="Submitted before (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    cursor = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, backends: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = [("", "any backend"), *((b, b) for b in backends)]


class SubmitForm(forms.Form):
    """A job as JSON text for one backend; `shots`, when given, replaces every experiment's."""

    backend = forms.ChoiceField(choices=[])
    example = forms.ChoiceField(required=False, choices=[], label="Example")
    job = forms.CharField(
        label="Job JSON",
        required=False,
        widget=forms.Textarea(attrs={**TEXT, "rows": 14, "class": "code"}),
    )
    shots = forms.IntegerField(
        required=False, min_value=1, label="Shots per experiment", help_text="Empty: the job's own."
    )

    def __init__(self, *args: Any, backends: list[str], examples: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = [(b, b) for b in backends]
        self.fields["example"].choices = [("", "—"), *((e, e) for e in examples)]

    def job_text(self) -> str:
        """The job to post: as typed, with `shots` set in every experiment when asked for.

        Text that is not a job object is posted as typed, so that the API's own check
        words the refusal.
        """
        text = self.cleaned_data["job"]
        shots = self.cleaned_data.get("shots")
        if shots is None:
            return str(text)
        try:
            job = json.loads(text)
        except ValueError:
            return str(text)
        if isinstance(job, dict) and all(isinstance(e, dict) for e in job.values()):
            job = {name: {**experiment, "shots": shots} for name, experiment in job.items()}
            return json.dumps(job)
        return str(text)


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Name", widget=forms.TextInput(attrs={"placeholder": "laptop"})
    )
