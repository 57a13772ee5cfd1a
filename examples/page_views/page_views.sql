-- Page views per page per minute (the article's real-time dashboard).
-- Events: {"user_id": "123", "event_type": "page_view", "timestamp": 1698400800000, "page": "/product", "device": "mobile"}
CREATE SOURCE user_events (user_id TEXT, event_type TEXT, page TEXT, timestamp TIMESTAMP)
  FROM TOPIC 'user-events' FORMAT JSON
  WATERMARK FOR timestamp AS timestamp - INTERVAL '5' SECOND;

CREATE SINK page_views_per_minute INTO SQLITE 'analytics.db'
  PRIMARY KEY (window_start, page) AS
SELECT window_start, window_end, page, COUNT(*) AS views
FROM TUMBLE(user_events, timestamp, INTERVAL '1' MINUTE)
WHERE event_type = 'page_view'
GROUP BY window_start, window_end, page
EMIT ON WINDOW CLOSE;
