"""Drafts saved before blocks had versions name no version on their nodes; every block was
at version 1 then, so each such node is stamped ``"version": 1``. Without this, the next
save of an old draft would take the block's latest version for a config written for 1.
Published versions are left as they were: they are immutable, and a node without a
version already loads as version 1."""

from django.db import migrations


def stamp_drafts(apps, schema_editor):
    Flow = apps.get_model("flows", "Flow")
    for flow in Flow.objects.only("id", "draft_definition").iterator():
        nodes = (flow.draft_definition or {}).get("nodes")
        if not isinstance(nodes, list):
            continue
        missing = [node for node in nodes if isinstance(node, dict) and "version" not in node]
        if not missing:
            continue
        for node in missing:
            node["version"] = 1
        Flow.objects.filter(pk=flow.pk).update(draft_definition=flow.draft_definition)


class Migration(migrations.Migration):
    dependencies = [("flows", "0001_initial")]

    operations = [migrations.RunPython(stamp_drafts, migrations.RunPython.noop)]
