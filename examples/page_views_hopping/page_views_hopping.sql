-- Page views per page over the last 10 minutes, refreshed every minute (hopping windows).
CREATE SOURCE user_events (user_id TEXT, event_type TEXT, page TEXT, timestamp TIMESTAMP)
  FROM TOPIC 'user-events' FORMAT JSON
  WATERMARK FOR timestamp AS timestamp - INTERVAL '5' SECOND;

CREATE SINK page_views_10m INTO SQLITE 'analytics.db'
  PRIMARY KEY (window_end, page) AS
SELECT window_start, window_end, page, COUNT(*) AS views, COUNT(DISTINCT user_id) AS viewers
FROM HOP(user_events, timestamp, INTERVAL '1' MINUTE, INTERVAL '10' MINUTE)
WHERE event_type = 'page_view'
GROUP BY window_start, window_end, page
EMIT ON WINDOW CLOSE;
