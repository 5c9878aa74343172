-- Step 1b, one of two: this file (all tokens) or 15_limit.sql (--limit-tokens).
CREATE OR REPLACE TEMPORARY VIEW tokens AS
SELECT line_id, sent, k, word FROM tokens_all;
