-- Step 4: kept -> windows; sql/corpus/40_windows.sql in Spark SQL. Dialect edits: collect_list for list
-- (a frame ordered by pos), size, slice(array, start, length) for list_slice(list, start, end), concat,
-- reverse, sequence, transform, array(...) for [...].
CREATE OR REPLACE TEMPORARY VIEW windows AS
WITH framed AS (
  SELECT
    line_id,
    sent,
    piece,
    pos,
    id,
    collect_list(id) OVER (
      PARTITION BY line_id, sent, piece ORDER BY pos
      ROWS BETWEEN ${window} PRECEDING AND ${window} FOLLOWING
    ) AS ctx,
    least(pos, ${window}) AS c,
    CASE WHEN ${dynamic_window}
      THEN ${window} - CAST(floor(
        shiftrightunsigned(xxhash64(${seed}, 'window', line_id, sent, k), 11) / 9007199254740992.0 * ${window}
      ) AS INT)
      ELSE ${window} END AS w
  FROM kept
),
sides AS (
  SELECT *, least(c, w) AS a, least(size(ctx) - c - 1, w) AS b FROM framed
),
weights AS (
  SELECT
    transform(sequence(1, ${window}),
      j -> CAST(CASE WHEN ${uniform} THEN 1 ELSE j / ${window} END AS FLOAT)) AS wl,
    reverse(transform(sequence(1, ${window}),
      j -> CAST(CASE WHEN ${uniform} THEN 1 ELSE j / ${window} END AS FLOAT))) AS wr
),
context AS (
  SELECT
    *,
    concat(slice(ctx, c - a + 1, a), slice(ctx, c + 2, b)) AS near,
    concat(slice(wl, ${window} - a + 1, a), slice(wr, 1, b)) AS near_weight
  FROM sides CROSS JOIN weights
  WHERE a + b > 0
)
SELECT
  line_id,
  sent,
  piece,
  pos,
  CASE WHEN ${skipgram} THEN array(id) ELSE near END AS input,
  CASE WHEN ${skipgram} THEN near ELSE array(id) END AS target_index,
  CASE WHEN ${skipgram} THEN near_weight ELSE array(CAST(1 AS FLOAT)) END AS target_value
FROM context;
