-- Step 3: tokens + vocab -> kept(line_id, sent, piece, pos, id): the ids of each sentence in order,
-- words outside the vocabulary dropped (like word2vec), sentences cut into pieces of ${max_sentence} ids
-- (lib/io/prepare.ts MAX_SENTENCE), frequent words subsampled with the keep probability and a seeded
-- hash of the token's place (${seed}) as the uniform draw, pos renumbered over what is kept. Stored in
-- line order, so that writing one shard (a range of lines) reads only its part of the table.
CREATE OR REPLACE TABLE kept AS
WITH known AS (
  SELECT
    t.line_id,
    t.sent,
    t.k,
    v.id,
    v.keep,
    (row_number() OVER (PARTITION BY t.line_id, t.sent ORDER BY t.k) - 1) // ${max_sentence} AS piece
  FROM tokens t JOIN vocab v ON t.word = v.word
),
sampled AS (
  SELECT * FROM known
  WHERE keep >= 1.0 OR (hash(${seed}, line_id, sent, k) >> 11)::DOUBLE / 9007199254740992.0 < keep
)
SELECT
  line_id,
  sent,
  piece::INTEGER AS piece,
  k,
  (row_number() OVER (PARTITION BY line_id, sent, piece ORDER BY k) - 1)::INTEGER AS pos,
  id
FROM sampled
ORDER BY line_id;
