"""Full-history search on PostgreSQL (messaging.store.postgresql.message_search).

Two GIN indexes over the searchable text of text, image and file messages not
recalled (the text, and the file's name):

- trigrams (pg_trgm) for queries of three characters or more, in any script:
  `ILIKE '%query%'` is answered from the index;
- grams: every CJK character and every pair of adjacent CJK characters, and every
  Latin word of one or two letters, for the one- and two-character queries that
  trigrams cannot answer (Chinese has no spaces: a two-character word such as
  会议 is a bigram of the text around it).

Other databases (the embedded SQLite mode) search without an index (the portable store).
"""

from typing import Any

from django.db import migrations

TEXT_FUNCTION = r"""
CREATE OR REPLACE FUNCTION messaging_search_text(body jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(body->>'text', '') || ' ' || coalesce(body->>'name', '')
$$
"""

# CJK unified ideographs (and extension A, compatibility), kana, hangul syllables.
GRAMS_FUNCTION = r"""
CREATE OR REPLACE FUNCTION messaging_search_grams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT coalesce(array_agg(g), '{}') FROM (
    SELECT substr(run[1], i, n) AS g
    FROM regexp_matches(t, '[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+', 'g')
           AS run,
         generate_series(1, char_length(run[1])) AS i,
         (VALUES (1), (2)) AS width(n)
    WHERE i + n - 1 <= char_length(run[1])
    UNION ALL
    SELECT word[1] FROM regexp_matches(lower(t), '[a-z0-9]+', 'g') AS word
    WHERE char_length(word[1]) <= 2
  ) grams
$$
"""

SEARCHABLE = "kind IN ('text', 'image', 'file') AND recalled_at IS NULL"

INDEXES = f"""
CREATE INDEX IF NOT EXISTS messaging_message_search_trgm ON messaging_message
  USING gin (messaging_search_text(body) gin_trgm_ops) WHERE {SEARCHABLE};
CREATE INDEX IF NOT EXISTS messaging_message_search_grams ON messaging_message
  USING gin (messaging_search_grams(messaging_search_text(body))) WHERE {SEARCHABLE};
"""

DROP = """
DROP INDEX IF EXISTS messaging_message_search_grams;
DROP INDEX IF EXISTS messaging_message_search_trgm;
DROP FUNCTION IF EXISTS messaging_search_grams(text);
DROP FUNCTION IF EXISTS messaging_search_text(jsonb);
"""


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(TEXT_FUNCTION)
    schema_editor.execute(GRAMS_FUNCTION)
    schema_editor.execute(INDEXES)


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0006_registered_kinds")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
