-- Step 5 (Spark only; the DuckDB engine writes its own files): the shards into ${out}/windows (Spark's
-- part-*.snappy.parquet, Parquet's default compression, and _SUCCESS; train on that folder) and the
-- vocabulary, in id order, as one word<TAB>count text file into ${out}/vocab (copy it to
-- ${out}/windows/vocab.tsv before training). ${out} must not exist yet.
CREATE TABLE corpus_windows USING parquet LOCATION '${out}/windows' AS
SELECT input, target_index, target_value FROM windows;

CREATE TABLE corpus_vocab USING text LOCATION '${out}/vocab' AS
SELECT /*+ COALESCE(1) */ concat(word, '\t', CAST(cnt AS STRING)) AS value FROM vocab ORDER BY id;
