-- Step 1: lines -> tokens_all(line_id, sent, k, word); sql/corpus/10_tokens.sql in Spark SQL. Dialect edits:
-- posexplode for unnest, transform/filter/split for list_transform/list_filter/string_split_regex,
-- Java regexes with a group for regexp_extract_all, $1 for \1, doubled backslashes in literals; Spark
-- has no NFC normalisation (normalise the text upstream if it mixes forms).
CREATE OR REPLACE TEMPORARY VIEW tokens_all AS
WITH raw AS (
  SELECT
    line_id,
    CASE
      WHEN tagged THEN transform(
        filter(split(`text`, '[\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}]+'), x -> x <> ''),
        x -> CASE WHEN ${lowercase} THEN lower(regexp_replace(x, '^(.+)/[^/]*$', '$1'))
          ELSE regexp_replace(x, '^(.+)/[^/]*$', '$1') END
      )
      WHEN ${keep_punct} OR ${split_punct} THEN regexp_extract_all(
        CASE WHEN ${lowercase} THEN lower(`text`) ELSE `text` END,
        '([\\p{L}\\p{M}\\p{N}]+(?:[''’._\\-][\\p{L}\\p{M}\\p{N}]+)*|[^\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}\\p{L}\\p{M}\\p{N}])',
        1
      )
      ELSE regexp_extract_all(
        CASE WHEN ${lowercase} THEN lower(`text`) ELSE `text` END,
        '([\\p{L}\\p{M}\\p{N}]+(?:[''’._\\-][\\p{L}\\p{M}\\p{N}]+)*)',
        1
      )
    END AS toks
  FROM lines
),
exploded AS (
  SELECT line_id, k, word FROM raw LATERAL VIEW posexplode(toks) e AS k, word
),
marked AS (
  SELECT
    line_id,
    k,
    word,
    NOT word RLIKE '[\\p{L}\\p{M}\\p{N}]' AS punct,
    CASE WHEN ${split_punct} THEN coalesce(sum(
      CASE WHEN word IN ('.', '!', '?', '。', '！', '？') THEN 1 ELSE 0 END
    ) OVER (PARTITION BY line_id ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
    ELSE 0 END AS sent
  FROM exploded
)
SELECT line_id, CAST(sent AS INT) AS sent, CAST(k AS INT) AS k, word
FROM marked
WHERE NOT punct OR ${keep_punct};
