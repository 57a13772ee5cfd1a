-- Fraud alerts: users whose click value exceeds 1000 within 5 minutes.
-- Events: {"user_id": "user123", "action": "click", "timestamp": "2023-10-27T10:00:00Z", "value": 150}
CREATE SOURCE clicks (user_id TEXT, action TEXT, value DOUBLE, timestamp TIMESTAMP)
  FROM TOPIC 'clickstream' FORMAT JSON
  WATERMARK FOR timestamp AS timestamp - INTERVAL '5' SECOND
  WITH ('idle.timeout.ms' = '30000', 'allowed.lateness.ms' = '0');

CREATE SINK suspicious_users INTO SQLITE 'analytics.db'
  PRIMARY KEY (window_start, user_id) AS
SELECT window_start, window_end, user_id, SUM(value) AS total, COUNT(*) AS clicks
FROM TUMBLE(clicks, timestamp, INTERVAL '5' MINUTE)
WHERE action = 'click'
GROUP BY window_start, window_end, user_id
HAVING SUM(value) > 1000
EMIT ON WINDOW CLOSE;
