-- User sessions: a session ends after 15 minutes without activity; pages viewed per session.
-- Events: {"user_id": "u1", "page_id": "/home", "timestamp": 1698400800000, "event_type": "page_view"}
CREATE SOURCE clickstream (user_id TEXT, page_id TEXT, event_type TEXT, timestamp TIMESTAMP)
  FROM TOPIC 'clickstream' FORMAT JSON
  WATERMARK FOR timestamp AS timestamp - INTERVAL '10' SECOND
  WITH ('idle.timeout.ms' = '60000');

CREATE SINK user_sessions INTO SQLITE 'analytics.db'
  PRIMARY KEY (user_id, window_start) AS
SELECT user_id, window_start, window_end, COUNT(*) AS pages, COUNT(DISTINCT page_id) AS distinct_pages
FROM SESSION(clickstream, timestamp, INTERVAL '15' MINUTE)
WHERE event_type = 'page_view'
GROUP BY window_start, window_end, user_id
EMIT ON WINDOW CLOSE;
