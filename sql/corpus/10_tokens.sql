-- Step 1 of the corpus job (DuckDB dialect; the Spark SQL version is sql/spark/10_tokens.sql).
-- lines(line_id BIGINT, tagged BOOLEAN, text VARCHAR) -> tokens(line_id, sent, k, word):
-- one row per token, k its place in the line, sent the sentence within the line (0 unless
-- --sentences punct). Tokenisation as lib/io/tokenize.ts: NFC, lowercase, a word is a run of
-- letters/marks/digits joined by single ' ’ . _ - ; other non-space characters are punctuation
-- tokens. Tagged lines (the Brown corpus, word/tag) are split on white space and lose their last /tag.
-- Parameters (${...}, filled in by lib/io/duckdb_sql.ts): lowercase, token_re, space_re,
-- split_punct, keep_punct.
CREATE OR REPLACE TABLE tokens AS
WITH raw AS (
  SELECT
    line_id,
    CASE
      WHEN tagged THEN list_transform(
        list_filter(string_split_regex(text, ${space_re}), x -> x <> ''),
        x -> CASE WHEN ${lowercase} THEN lower(regexp_replace(x, '^(.+)/[^/]*$', '\1'))
          ELSE regexp_replace(x, '^(.+)/[^/]*$', '\1') END
      )
      ELSE regexp_extract_all(
        CASE WHEN ${lowercase} THEN lower(nfc_normalize(text)) ELSE nfc_normalize(text) END,
        ${token_re}
      )
    END AS toks
  FROM lines
),
exploded AS (
  SELECT line_id, unnest(range(len(toks))) AS k, unnest(toks) AS word FROM raw
),
marked AS (
  SELECT
    line_id,
    k,
    word,
    NOT regexp_matches(word, '[\p{L}\p{M}\p{N}]') AS punct,
    -- the sentence of a token: how many sentence ends come before it in its line
    CASE WHEN ${split_punct} THEN coalesce(sum(
      CASE WHEN word IN ('.', '!', '?', '。', '！', '？') THEN 1 ELSE 0 END
    ) OVER (PARTITION BY line_id ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
    ELSE 0 END AS sent
  FROM exploded
)
SELECT line_id, sent::INTEGER AS sent, k::INTEGER AS k, word
FROM marked
WHERE NOT punct OR ${keep_punct};
