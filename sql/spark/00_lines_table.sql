-- Step 0 (instead of 00_lines.sql): lines from column ${text_column} of the Parquet table at ${input},
-- one line per non-null cell (as `deno task corpus --engine duckdb --text-column`).
CREATE OR REPLACE TEMPORARY VIEW lines AS
SELECT monotonically_increasing_id() AS line_id, FALSE AS tagged, ${text_column} AS text
FROM parquet.`${input}`
WHERE ${text_column} IS NOT NULL;
