-- Step 1 of the corpus job (DuckDB dialect; the Spark SQL version is sql/spark/10_tokens.sql).
-- lines(line_id BIGINT, tagged BOOLEAN, text VARCHAR) -> tokens(line_id, sent, k, word):
-- one row per token, k its place in the line, sent the sentence within the line (0 unless
-- --sentences punct). Tokenisation as lib/io/tokenize.ts: NFC, lowercase, a word is a run of
-- letters/marks/digits joined by single ' ’ . _ - ; other non-space characters are punctuation
-- tokens. Tagged lines (the Brown corpus, word/tag) are split on white space and lose their last /tag.
-- Unicode 16 (V8's tables; DuckDB's RE2 and lower() are older): the letters, marks and digits it added
-- (Garay, Tulu-Tigalari, Ol Onal, Kirat Rai, …: U+0897 … U+2EE5D) are spelled out after \p{L}\p{M}\p{N}
-- (the macro word_chars()), and its new capitals (U+1C89, U+A7CB, U+A7CC, U+A7DA, U+A7DC, Garay
-- U+10D50-10D65) lowercased by translate() after lower() (the macro lower16()), so that both engines make
-- the same words (tests/io_duckdb_test.ts checks every code point).
-- White space is JavaScript's \s, spelled out. Parameters (${...}, filled in by lib/io/duckdb_sql.ts):
-- lowercase, split_punct, keep_punct.
-- One home for each Unicode 16 addition: the letters, marks and digits of a word (the inside of a
-- character class), and lower() with its new capitals
CREATE OR REPLACE TEMP MACRO word_chars() AS '\p{L}\p{M}\p{N}\x{897}\x{1C89}-\x{1C8A}\x{A7CB}-\x{A7CD}\x{A7DA}-\x{A7DC}\x{105C0}-\x{105F3}\x{10D40}-\x{10D65}\x{10D69}-\x{10D6D}\x{10D6F}-\x{10D85}\x{10EC2}-\x{10EC4}\x{10EFC}\x{11380}-\x{11389}\x{1138B}\x{1138E}\x{11390}-\x{113B5}\x{113B7}-\x{113C0}\x{113C2}\x{113C5}\x{113C7}-\x{113CA}\x{113CC}-\x{113D3}\x{113E1}-\x{113E2}\x{116D0}-\x{116E3}\x{11BC0}-\x{11BE0}\x{11BF0}-\x{11BF9}\x{11F5A}\x{13460}-\x{143FA}\x{16100}-\x{16139}\x{16D40}-\x{16D6C}\x{16D70}-\x{16D79}\x{18CFF}\x{1CCF0}-\x{1CCF9}\x{1E5D0}-\x{1E5FA}\x{2EBF0}-\x{2EE5D}';
CREATE OR REPLACE TEMP MACRO lower16(x) AS translate(lower(x), 'ᲉꟋꟌꟚꟜ𐵐𐵑𐵒𐵓𐵔𐵕𐵖𐵗𐵘𐵙𐵚𐵛𐵜𐵝𐵞𐵟𐵠𐵡𐵢𐵣𐵤𐵥', 'ᲊɤꟍꟛƛ𐵰𐵱𐵲𐵳𐵴𐵵𐵶𐵷𐵸𐵹𐵺𐵻𐵼𐵽𐵾𐵿𐶀𐶁𐶂𐶃𐶄𐶅');
CREATE OR REPLACE TABLE tokens AS
WITH raw AS (
  SELECT
    line_id,
    CASE
      WHEN tagged THEN list_transform(
        list_filter(string_split_regex(text, '[\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}]+'), x -> x <> ''),
        x -> CASE WHEN ${lowercase} THEN lower16(regexp_replace(x, '^(.+)/[^/]*$', '\1'))
          ELSE regexp_replace(x, '^(.+)/[^/]*$', '\1') END
      )
      WHEN ${keep_punct} OR ${split_punct} THEN regexp_extract_all(
        CASE WHEN ${lowercase} THEN lower16(nfc_normalize(text)) ELSE nfc_normalize(text) END,
        '[' || word_chars() || ']+(?:[''’._\-][' || word_chars() || ']+)*|[^\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}' || word_chars() || ']'
      )
      ELSE regexp_extract_all(
        CASE WHEN ${lowercase} THEN lower16(nfc_normalize(text)) ELSE nfc_normalize(text) END,
        '[' || word_chars() || ']+(?:[''’._\-][' || word_chars() || ']+)*'
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
    NOT regexp_matches(word, '[' || word_chars() || ']') AS punct,
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
