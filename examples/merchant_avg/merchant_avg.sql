-- 5-minute average transaction amount per merchant.
-- Events: {"merchant_id": "m-17", "amount": 42.5, "currency": "EUR", "ts": "2023-10-27T10:00:03.250Z"}
CREATE SOURCE transactions (merchant_id TEXT, amount DOUBLE, ts TIMESTAMP)
  FROM TOPIC 'transactions' FORMAT JSON
  WATERMARK FOR ts AS ts - INTERVAL '10' SECOND;

CREATE SINK merchant_avg_5m INTO SQLITE 'analytics.db'
  PRIMARY KEY (window_start, merchant_id) AS
SELECT window_start, window_end, merchant_id,
       AVG(amount) AS avg_amount, COUNT(*) AS transactions, MAX(amount) AS max_amount
FROM TUMBLE(transactions, ts, INTERVAL '5' MINUTE)
WHERE amount IS NOT NULL
GROUP BY window_start, window_end, merchant_id
EMIT ON WINDOW CLOSE;
