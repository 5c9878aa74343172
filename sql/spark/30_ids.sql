-- Step 3: tokens + vocab -> kept(line_id, sent, piece, k, pos, id); sql/corpus/30_ids.sql in Spark SQL.
-- Dialect edits: div for //, xxhash64 and shiftrightunsigned for hash and >> (other hash values than
-- DuckDB's: subsampling is equal in distribution, not draw for draw).
CREATE OR REPLACE TEMPORARY VIEW kept AS
WITH known AS (
  SELECT
    t.line_id,
    t.sent,
    t.k,
    v.id,
    v.keep,
    (row_number() OVER (PARTITION BY t.line_id, t.sent ORDER BY t.k) - 1) div ${max_sentence} AS piece
  FROM tokens t JOIN vocab v ON t.word = v.word
),
sampled AS (
  SELECT * FROM known
  WHERE keep >= 1.0
    OR shiftrightunsigned(xxhash64(${seed}, line_id, sent, k), 11) / 9007199254740992.0 < keep
)
SELECT
  line_id,
  sent,
  CAST(piece AS INT) AS piece,
  k,
  CAST(row_number() OVER (PARTITION BY line_id, sent, piece ORDER BY k) - 1 AS INT) AS pos,
  id
FROM sampled;
