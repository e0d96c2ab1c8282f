"""Indexes for the counter's search: four-character pieces of labels and phones, room numbers
in page order, phones that aren't all digits.

``wuye_grams4(t)``: every four-character piece of ``t``. A label or phone containing a text of
four characters or more contains each of its pieces, so a GIN index of the pieces finds them
(the ``LIKE`` then checks the order). Labels and phones are made of digits, whose trigrams
(``0002_search_indexes``) are each in tens of thousands of rows: ``5678``, the last four digits
of a phone, read ~40,000 trigram entries to find ~1,000 phones at a million households, its
piece ``5678`` reads those ~1,000 alone.

``counter.selectors.household_search`` shows households ordered by community and label. A
room number alone (``1803``) is in every building: thousands of households at a million
units. ``(upper(room_no), community_id, label, id)`` hands them over already in page order, so
the search reads the first page's rows and stops, instead of reading all of them to sort. It
also serves ``upper(room_no) = …`` alone, so it replaces ``estates_unit_room_upper`` of
``0002_search_indexes``.

``estates_unit_page_order`` ``(community_id, label, id)``: the search walks the units in page
order until its page is full, testing each; with the id in the index, the walk and a test on
the label or against a list of ids read the index alone (a table row only for the page).

``estates_resident_phone_other_trgm``: the trigrams of the phones that are not all digits
(landlines written ``021-…``, numbers with spaces). A text with anything but digits in it
(``17-1803``, ``沪A1``) can only be in those, and the search says so; the digits' trigrams of
``estates_resident_phone_trgm`` are in most of a million mobile numbers and cost tens of
milliseconds to intersect for such a text, to find nothing.

On SQLite nothing is created.
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION wuye_grams4(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(t, i, 4)), '{}')
  FROM generate_series(1, length(t) - 3) AS i
$$;

CREATE INDEX IF NOT EXISTS estates_unit_label_grams4
  ON estates_unit USING gin (wuye_grams4(upper(label)));
CREATE INDEX IF NOT EXISTS estates_resident_phone_grams4
  ON estates_resident USING gin (wuye_grams4(phone));
CREATE INDEX IF NOT EXISTS estates_unit_page_order ON estates_unit (community_id, label, id);
CREATE INDEX IF NOT EXISTS estates_unit_room_order
  ON estates_unit (upper(room_no), community_id, label, id);
DROP INDEX IF EXISTS estates_unit_room_upper;
CREATE INDEX IF NOT EXISTS estates_resident_phone_other_trgm
  ON estates_resident USING gin (phone gin_trgm_ops) WHERE phone !~ '^[0-9]*$';
"""

PG_BACKWARD = r"""
DROP INDEX IF EXISTS estates_resident_phone_grams4;
DROP INDEX IF EXISTS estates_unit_label_grams4;
DROP FUNCTION IF EXISTS wuye_grams4(text);
DROP INDEX IF EXISTS estates_resident_phone_other_trgm;
CREATE INDEX IF NOT EXISTS estates_unit_room_upper ON estates_unit (upper(room_no));
DROP INDEX IF EXISTS estates_unit_room_order;
DROP INDEX IF EXISTS estates_unit_page_order;
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("estates", "0002_search_indexes")]
    operations = [migrations.RunPython(forward, backward)]
