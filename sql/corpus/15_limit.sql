-- Optional step (--limit-tokens): keeps the first ${limit_tokens} tokens in text order.
CREATE OR REPLACE TABLE tokens AS
SELECT * FROM tokens
QUALIFY row_number() OVER (ORDER BY line_id, k) <= ${limit_tokens};
