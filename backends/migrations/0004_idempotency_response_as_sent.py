# The remembered answer is kept as the JSON text sent, so that a replay is the same bytes
# (PostgreSQL's jsonb reorders keys). Keys still in flight at migration time are dropped:
# their posts are long gone.

from django.db import migrations, models


def drop_unanswered(apps, schema_editor):
    apps.get_model("backends", "IdempotencyKey").objects.filter(response__isnull=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("backends", "0003_job_status_times_idempotency_quotas"),
    ]

    operations = [
        migrations.RunPython(drop_unanswered, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="idempotencykey",
            name="response",
            field=models.TextField(blank=True, default=""),
        ),
    ]
