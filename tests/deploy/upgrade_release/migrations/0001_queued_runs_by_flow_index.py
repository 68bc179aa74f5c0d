"""The release being rolled out: an index on ``runs_run`` built in the migration's
transaction, as ``runs.0004_queued_runs_index`` was (it locks the table against writes while
it builds, which the old workers must ride out)."""

from django.db import migrations

INDEX = "upgrade_release_queued_by_flow"


class Migration(migrations.Migration):
    dependencies = [("runs", "0004_queued_runs_index")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX {INDEX} ON runs_run (flow_id, created_at) "
            "WHERE status = 'queued' AND lease_owner = ''",
            reverse_sql=f"DROP INDEX IF EXISTS {INDEX}",
        ),
    ]
