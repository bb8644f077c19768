"""Job progress written by the worker: rate, time of the last report, exact result, task id."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0004_deadletter_capture_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="rate",
            field=models.FloatField(
                blank=True, help_text="messages per second, last report", null=True
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="progress_at",
            field=models.DateTimeField(blank=True, help_text="the worker's last report", null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="result",
            field=models.JSONField(
                blank=True, default=dict, help_text="the exact outcome, by kind"
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="task_id",
            field=models.CharField(
                blank=True, help_text="the Celery task running it", max_length=64
            ),
        ),
    ]
