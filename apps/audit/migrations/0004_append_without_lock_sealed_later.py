"""Appends take no lock: each event gets its place in the append order from a Postgres
sequence (``appended``) and a sealer gives it its chain position later (``sequence``,
empty until then). Existing events are all sealed already; their digests do not change
(the digest never covered ``appended``), and they are numbered in the order they were
chained."""

from django.db import migrations, models

SEQUENCE = "audit_event_appended"

CREATE = f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} AS bigint"
# Existing events take their chains' order in the append order. The new numbers start
# above every number the column was filled with, so no two rows ever hold the same one
# mid-statement (the column is unique). This runs last: Postgres refuses to alter a table
# in the transaction that updated its rows.
BACKFILL = f"""
    UPDATE audit_auditevent AS event SET appended = ordered.position
      FROM (SELECT id, (SELECT COALESCE(MAX(appended), 0) FROM audit_auditevent)
                       + row_number() OVER (ORDER BY created_at, workspace_id, sequence)
                   AS position FROM audit_auditevent) AS ordered
     WHERE event.id = ordered.id;
    SELECT setval('{SEQUENCE}', COALESCE(MAX(appended), 0) + 1, false) FROM audit_auditevent;
    ALTER SEQUENCE {SEQUENCE} OWNED BY audit_auditevent.appended;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_data_settings"),
    ]

    operations = [
        migrations.RunSQL(CREATE, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterModelOptions(
            name="auditevent",
            options={"ordering": ["-appended"]},
        ),
        migrations.AddField(
            model_name="auditevent",
            name="appended",
            field=models.BigIntegerField(
                db_default=models.Func(
                    models.Value(SEQUENCE),
                    function="nextval",
                    output_field=models.BigIntegerField(),
                ),
                editable=False,
                unique=True,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="digest",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="previous_digest",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="sequence",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("sequence__isnull", True)),
                fields=["appended"],
                name="audit_unsealed",
            ),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
