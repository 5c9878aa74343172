-- Step 4: kept -> the view windows(line_id, sent, piece, pos, input, target_index, target_value), one row per
-- centre with at least one context word (lib/io/windows.ts). ctx is the frame of ${window} ids on each
-- side inside the sentence piece; c the centre's place in it; w the radius used (${window}, or with
-- --dynamic-window ${window} - b, b uniform in [0, ${window}) from a seeded hash); a and b the context
-- words taken on the left and right. Skip-gram targets weigh (window - distance + 1) / window
-- (${uniform}: 1); wl holds the left weights (farthest first), wr the right ones (nearest first).
-- ${skipgram}: input = [centre], target = context; else cbow: input = context, target = [centre].
-- line_rows(line_id, n): the rows of windows each line gives, without making them (a piece of n >= 2 ids
-- gives n rows, every centre having a neighbour within w >= 1; an id alone gives none); the engine cuts
-- its shards at line ends by it (lib/io/duckdb_prepare.ts), as the built-in engine does.
CREATE OR REPLACE VIEW line_rows AS
SELECT line_id, sum(n)::BIGINT AS n
FROM (SELECT line_id, count(*) AS n FROM kept GROUP BY line_id, sent, piece HAVING count(*) >= 2)
GROUP BY line_id;
CREATE OR REPLACE VIEW windows AS
WITH framed AS (
  SELECT
    line_id,
    sent,
    piece,
    pos,
    id,
    list(id ORDER BY pos) OVER (
      PARTITION BY line_id, sent, piece ORDER BY pos
      ROWS BETWEEN ${window} PRECEDING AND ${window} FOLLOWING
    ) AS ctx,
    least(pos, ${window}) AS c,
    CASE WHEN ${dynamic_window}
      THEN ${window} - floor(
        (hash(${seed}, 'window', line_id, sent, k) >> 11)::DOUBLE / 9007199254740992.0 * ${window}
      )::INTEGER
      ELSE ${window} END AS w
  FROM kept
),
sides AS (
  SELECT *, least(c, w) AS a, least(len(ctx) - c - 1, w) AS b FROM framed
),
weights AS (
  SELECT
    list_transform(range(1, ${window} + 1),
      j -> CAST(CASE WHEN ${uniform} THEN 1 ELSE j / ${window} END AS FLOAT)) AS wl,
    list_reverse(list_transform(range(1, ${window} + 1),
      j -> CAST(CASE WHEN ${uniform} THEN 1 ELSE j / ${window} END AS FLOAT))) AS wr
),
context AS (
  SELECT
    *,
    list_concat(list_slice(ctx, c - a + 1, c), list_slice(ctx, c + 2, c + 1 + b)) AS near,
    list_concat(list_slice(wl, ${window} - a + 1, ${window}), list_slice(wr, 1, b)) AS near_weight
  FROM sides, weights
  WHERE a + b > 0
)
SELECT
  line_id,
  sent,
  piece,
  pos,
  CASE WHEN ${skipgram} THEN [id] ELSE near END AS input,
  CASE WHEN ${skipgram} THEN near ELSE [id] END AS target_index,
  CASE WHEN ${skipgram} THEN near_weight ELSE [CAST(1 AS FLOAT)] END AS target_value
FROM context;
