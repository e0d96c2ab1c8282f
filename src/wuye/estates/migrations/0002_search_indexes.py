"""Indexes for the counter's household search at a million units (PostgreSQL).

The search (``counter.selectors.household_search``) matches a room or house label, a
resident's name or phone, or a car plate, anywhere in the text (``icontains``), as the cashier
types it. B-tree indexes can't serve ``LIKE '%…%'``; these can:

- ``pg_trgm`` GIN indexes on ``upper(label)``, ``upper(name)``, ``phone`` and
  ``upper(plate_no)``: any text of three characters or more;
- a GIN index on ``wuye_grams12(upper(name))``, the set of every one- and two-character piece
  of a name: a two-character name (王伟) or a surname alone, which trigrams can't find without
  reading the whole index;
- a b-tree on ``upper(room_no)`` for the exact room number.

On SQLite nothing is created (the embedded database holds a few thousand units). The
extension needs a role allowed to create it (the superuser, or pg_trgm trusted, PostgreSQL 13+).
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE OR REPLACE FUNCTION wuye_grams12(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (
    SELECT substr(t, i, 1) AS g FROM generate_series(1, length(t)) AS i
    UNION ALL
    SELECT substr(t, i, 2) FROM generate_series(1, length(t) - 1) AS i
  ) AS pieces
$$;

CREATE INDEX IF NOT EXISTS estates_unit_label_trgm
  ON estates_unit USING gin (upper(label) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS estates_unit_room_upper ON estates_unit (upper(room_no));
CREATE INDEX IF NOT EXISTS estates_resident_name_trgm
  ON estates_resident USING gin (upper(name) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS estates_resident_name_grams
  ON estates_resident USING gin (wuye_grams12(upper(name)));
CREATE INDEX IF NOT EXISTS estates_resident_phone_trgm
  ON estates_resident USING gin (phone gin_trgm_ops);
CREATE INDEX IF NOT EXISTS estates_parkingspace_plate_trgm
  ON estates_parkingspace USING gin (upper(plate_no) gin_trgm_ops);
"""

PG_BACKWARD = r"""
DROP INDEX IF EXISTS estates_parkingspace_plate_trgm;
DROP INDEX IF EXISTS estates_resident_phone_trgm;
DROP INDEX IF EXISTS estates_resident_name_grams;
DROP INDEX IF EXISTS estates_resident_name_trgm;
DROP INDEX IF EXISTS estates_unit_room_upper;
DROP INDEX IF EXISTS estates_unit_label_trgm;
DROP FUNCTION IF EXISTS wuye_grams12(text);
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("estates", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
