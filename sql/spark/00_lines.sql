-- Spark SQL version of the corpus job (sql/corpus/ is the DuckDB one that `--engine duckdb` runs).
-- Step 0: the input as lines(line_id, tagged, text): one row per line of the text files at ${input}
-- (Spark reads .gz by its name), in file order. For a table's text column use 00_lines_table.sql.
CREATE OR REPLACE TEMPORARY VIEW lines AS
SELECT monotonically_increasing_id() AS line_id, FALSE AS tagged, value AS text
FROM text.`${input}`;
