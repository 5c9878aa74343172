-- Step 2: tokens -> vocab(id, word, cnt, keep). Words seen at least ${min_count} times, ids by count
-- descending, ties by the word in UTF-16 code-unit order (as lib/io/vocab.ts: the sort key moves the
-- characters U+E000..U+FFFF after the supplementary ones, where UTF-16 puts them), at most
-- ${max_vocab} words (0: all). keep is word2vec's subsampling keep probability for threshold
-- ${sample} (0: 1 for every word), f = cnt / the kept words' total.
CREATE OR REPLACE TABLE vocab AS
WITH counted AS (
  SELECT word, count(*) AS cnt FROM tokens GROUP BY word HAVING count(*) >= ${min_count}
),
ranked AS (
  SELECT
    (row_number() OVER (
      ORDER BY cnt DESC, regexp_replace(word, '([\x{E000}-\x{FFFF}])', chr(1114111) || '\1', 'g')
    ) - 1)::INTEGER AS id,
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
