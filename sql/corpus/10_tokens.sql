-- Step 1 of the corpus job (DuckDB dialect; the Spark SQL version is sql/spark/10_tokens.sql).
-- lines(line_id BIGINT, tagged BOOLEAN, text VARCHAR) -> tokens(line_id, sent, k, word):
-- one row per token, k its place in the line, sent the sentence within the line (0 unless
-- --sentences punct). Tokenisation as lib/io/tokenize.ts: NFC, lowercase, a word is a run of
-- letters/marks/digits joined by single ' ’ . _ - ; other non-space characters are punctuation
-- tokens. Tagged lines (the Brown corpus, word/tag) are split on white space and lose their last /tag.
-- White space is JavaScript's \s, spelled out. Parameters (${...}, filled in by lib/io/duckdb_sql.ts):
-- lowercase, split_punct, keep_punct.
CREATE OR REPLACE TABLE tokens AS
WITH raw AS (
  SELECT
    line_id,
    CASE
      WHEN tagged THEN list_transform(
        list_filter(string_split_regex(text, '[\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}]+'), x -> x <> ''),
        x -> CASE WHEN ${lowercase} THEN lower(regexp_replace(x, '^(.+)/[^/]*$', '\1'))
          ELSE regexp_replace(x, '^(.+)/[^/]*$', '\1') END
      )
      WHEN ${keep_punct} OR ${split_punct} THEN regexp_extract_all(
        CASE WHEN ${lowercase} THEN lower(nfc_normalize(text)) ELSE nfc_normalize(text) END,
        '[\p{L}\p{M}\p{N}]+(?:[''’._\-][\p{L}\p{M}\p{N}]+)*|[^\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}\p{L}\p{M}\p{N}]'
      )
      ELSE regexp_extract_all(
        CASE WHEN ${lowercase} THEN lower(nfc_normalize(text)) ELSE nfc_normalize(text) END,
        '[\p{L}\p{M}\p{N}]+(?:[''’._\-][\p{L}\p{M}\p{N}]+)*'
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
