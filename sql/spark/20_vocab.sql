-- Step 2: tokens -> vocab(id, word, cnt, keep); sql/corpus/20_vocab.sql in Spark SQL. Dialect edits:
-- U+10FFFF spelled decode(unhex('F48FBFBF'), 'UTF-8') (Spark's chr is ASCII only), $1 for \1. The
-- ranking window has no partition: one task sorts the distinct words (millions are fine).
CREATE OR REPLACE TEMPORARY VIEW vocab AS
WITH counted AS (
  SELECT word, count(*) AS cnt FROM tokens GROUP BY word HAVING count(*) >= ${min_count}
),
ranked AS (
  SELECT
    CAST(row_number() OVER (
      ORDER BY cnt DESC,
        regexp_replace(word, '([\\x{E000}-\\x{FFFF}])', concat(decode(unhex('F48FBFBF'), 'UTF-8'), '$1'))
    ) - 1 AS INT) AS id,
    word,
    cnt
  FROM counted
),
capped AS (
  SELECT * FROM ranked WHERE ${max_vocab} = 0 OR id < ${max_vocab}
)
SELECT
  id,
  word,
  cnt,
  CASE WHEN ${sample} > 0 THEN least(1.0, (sqrt((cnt / sum(cnt) OVER ()) / ${sample}) + 1)
    * ${sample} / (cnt / sum(cnt) OVER ())) ELSE 1.0 END AS keep
FROM capped;
