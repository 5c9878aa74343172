-- Step 1: lines -> tokens_all(line_id, sent, k, word); sql/corpus/10_tokens.sql in Spark SQL. Dialect edits:
-- posexplode for unnest, transform/filter/split for list_transform/list_filter/string_split_regex,
-- Java regexes with a group for regexp_extract_all, $1 for \1, doubled backslashes in literals, a one-row
-- view `unicode16` for the temp macros (Spark SQL has none), regexp_extract(…) = '' for NOT regexp_matches;
-- Spark has no NFC normalisation (normalise the text upstream if it mixes forms).
-- Unicode 16 (V8's tables, which the built-in engine follows) on the JVM's older ones (Java 17: Unicode
-- 13, Java 21: 15): unicode16.word_chars spells out, after \p{L}\p{M}\p{N}, the letters, marks and digits
-- Unicode 14, 15, 15.1 and 16 added (Vithkuqi, Toto, Kawi, Nag Mundari, CJK Extension H, Garay,
-- Tulu-Tigalari, …: U+0870 … U+323AF), and translate() after lower() lowercases their new capitals
-- (unicode16.capitals -> unicode16.smalls: U+1C89, U+2C2F, U+A7C0 …, Vithkuqi U+10570-10595, Garay
-- U+10D50-10D65), so that on Java 17 or later every code point tokenises as in the built-in engine
-- (tests/io_duckdb_spark_test.ts runs these regexes in Java, code point by code point). Needs Spark 3.2 or
-- later (translate by code point) and a JVM default locale without special casing rules (not tr, az, lt).
CREATE OR REPLACE TEMPORARY VIEW unicode16 AS
SELECT
  '\\p{L}\\p{M}\\p{N}\\x{870}-\\x{887}\\x{889}-\\x{88E}\\x{897}-\\x{8D2}\\x{C3C}\\x{C5D}\\x{CDD}\\x{CF3}\\x{ECE}\\x{170D}-\\x{1715}\\x{171F}\\x{180F}\\x{1AC1}-\\x{1ACE}\\x{1B4C}\\x{1C89}\\x{1C8A}\\x{1DFA}\\x{2C2F}-\\x{2C5F}\\x{9FFD}-\\x{9FFF}\\x{A7C0}-\\x{A7CD}\\x{A7D0}\\x{A7D1}\\x{A7D3}\\x{A7D5}-\\x{A7DC}\\x{A7F2}-\\x{A7F4}\\x{10570}-\\x{1057A}\\x{1057C}-\\x{1058A}\\x{1058C}-\\x{10592}\\x{10594}\\x{10595}\\x{10597}-\\x{105A1}\\x{105A3}-\\x{105B1}\\x{105B3}-\\x{105B9}\\x{105BB}\\x{105BC}\\x{105C0}-\\x{105F3}\\x{10780}-\\x{10785}\\x{10787}-\\x{107B0}\\x{107B2}-\\x{107BA}\\x{10D40}-\\x{10D65}\\x{10D69}-\\x{10D6D}\\x{10D6F}-\\x{10D85}\\x{10EC2}-\\x{10EC4}\\x{10EFC}-\\x{10EFF}\\x{10F70}-\\x{10F85}\\x{11070}-\\x{11075}\\x{110C2}\\x{1123F}-\\x{11241}\\x{11380}-\\x{11389}\\x{1138B}\\x{1138E}\\x{11390}-\\x{113B5}\\x{113B7}-\\x{113C0}\\x{113C2}\\x{113C5}\\x{113C7}-\\x{113CA}\\x{113CC}-\\x{113D3}\\x{113E1}\\x{113E2}\\x{116D0}-\\x{116E3}\\x{11740}-\\x{11746}\\x{11AB0}-\\x{11ABF}\\x{11BC0}-\\x{11BE0}\\x{11BF0}-\\x{11BF9}\\x{11F00}-\\x{11F10}\\x{11F12}-\\x{11F3A}\\x{11F3E}-\\x{11F42}\\x{11F50}-\\x{11F5A}\\x{12F90}-\\x{12FF0}\\x{1342F}\\x{13440}-\\x{13455}\\x{13460}-\\x{143FA}\\x{16100}-\\x{16139}\\x{16A70}-\\x{16ABE}\\x{16AC0}-\\x{16AC9}\\x{16D40}-\\x{16D6C}\\x{16D70}-\\x{16D79}\\x{18CFF}\\x{1AFF0}-\\x{1AFF3}\\x{1AFF5}-\\x{1AFFB}\\x{1AFFD}\\x{1AFFE}\\x{1B11F}-\\x{1B122}\\x{1B132}\\x{1B155}\\x{1CCF0}-\\x{1CCF9}\\x{1CF00}-\\x{1CF2D}\\x{1CF30}-\\x{1CF46}\\x{1D2C0}-\\x{1D2D3}\\x{1DF00}-\\x{1DF1E}\\x{1DF25}-\\x{1DF2A}\\x{1E030}-\\x{1E06D}\\x{1E08F}\\x{1E290}-\\x{1E2AE}\\x{1E4D0}-\\x{1E4F9}\\x{1E5D0}-\\x{1E5FA}\\x{1E7E0}-\\x{1E7E6}\\x{1E7E8}-\\x{1E7EB}\\x{1E7ED}\\x{1E7EE}\\x{1E7F0}-\\x{1E7FE}\\x{2A6DE}\\x{2A6DF}\\x{2B735}-\\x{2B739}\\x{2EBF0}-\\x{2EE5D}\\x{31350}-\\x{323AF}' AS word_chars,
  'ᲉⰯꟀꟋꟌꟐꟖꟘꟚꟜ𐕰𐕱𐕲𐕳𐕴𐕵𐕶𐕷𐕸𐕹𐕺𐕼𐕽𐕾𐕿𐖀𐖁𐖂𐖃𐖄𐖅𐖆𐖇𐖈𐖉𐖊𐖌𐖍𐖎𐖏𐖐𐖑𐖒𐖔𐖕𐵐𐵑𐵒𐵓𐵔𐵕𐵖𐵗𐵘𐵙𐵚𐵛𐵜𐵝𐵞𐵟𐵠𐵡𐵢𐵣𐵤𐵥' AS capitals,
  'ᲊⱟꟁɤꟍꟑꟗꟙꟛƛ𐖗𐖘𐖙𐖚𐖛𐖜𐖝𐖞𐖟𐖠𐖡𐖣𐖤𐖥𐖦𐖧𐖨𐖩𐖪𐖫𐖬𐖭𐖮𐖯𐖰𐖱𐖳𐖴𐖵𐖶𐖷𐖸𐖹𐖻𐖼𐵰𐵱𐵲𐵳𐵴𐵵𐵶𐵷𐵸𐵹𐵺𐵻𐵼𐵽𐵾𐵿𐶀𐶁𐶂𐶃𐶄𐶅' AS smalls;
CREATE OR REPLACE TEMPORARY VIEW tokens_all AS
WITH raw AS (
  SELECT
    line_id,
    CASE
      WHEN tagged THEN transform(
        filter(split(`text`, '[\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}]+'), x -> x <> ''),
        x -> CASE WHEN ${lowercase} THEN translate(lower(regexp_replace(x, '^(.+)/[^/]*$', '$1')), u.capitals, u.smalls)
          ELSE regexp_replace(x, '^(.+)/[^/]*$', '$1') END
      )
      WHEN ${keep_punct} OR ${split_punct} THEN regexp_extract_all(
        CASE WHEN ${lowercase} THEN translate(lower(`text`), u.capitals, u.smalls) ELSE `text` END,
        concat('([', u.word_chars, ']+(?:[''’._\\-][', u.word_chars, ']+)*|[^\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}', u.word_chars, '])'),
        1
      )
      ELSE regexp_extract_all(
        CASE WHEN ${lowercase} THEN translate(lower(`text`), u.capitals, u.smalls) ELSE `text` END,
        concat('([', u.word_chars, ']+(?:[''’._\\-][', u.word_chars, ']+)*)'),
        1
      )
    END AS toks
  FROM lines CROSS JOIN unicode16 u
),
exploded AS (
  SELECT line_id, k, word FROM raw LATERAL VIEW posexplode(toks) e AS k, word
),
marked AS (
  SELECT
    line_id,
    k,
    word,
    regexp_extract(word, concat('[', u.word_chars, ']'), 0) = '' AS punct,
    CASE WHEN ${split_punct} THEN coalesce(sum(
      CASE WHEN word IN ('.', '!', '?', '。', '！', '？') THEN 1 ELSE 0 END
    ) OVER (PARTITION BY line_id ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
    ELSE 0 END AS sent
  FROM exploded CROSS JOIN unicode16 u
)
SELECT line_id, CAST(sent AS INT) AS sent, CAST(k AS INT) AS k, word
FROM marked
WHERE NOT punct OR ${keep_punct};
