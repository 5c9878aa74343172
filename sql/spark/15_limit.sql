-- Step 1b, one of two: 15_tokens.sql (all tokens) or this file (--limit-tokens): the first
-- ${limit_tokens} tokens in text order as the view tokens (a global sort: one task).
CREATE OR REPLACE TEMPORARY VIEW tokens AS
SELECT line_id, sent, k, word FROM (
  SELECT *, row_number() OVER (ORDER BY line_id, k) AS n FROM tokens_all
) WHERE n <= ${limit_tokens};
