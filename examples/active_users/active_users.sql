-- Active users per minute: COUNT(DISTINCT user_id) over one-minute windows.
CREATE SOURCE user_events (user_id TEXT, event_type TEXT, event_time TIMESTAMP)
  FROM TOPIC 'user-clicks' FORMAT JSON
  WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND;

CREATE SINK minute_metrics INTO SQLITE 'analytics.db'
  PRIMARY KEY (window_start) AS
SELECT window_start, window_end,
       COUNT(DISTINCT user_id) AS active_users,
       COUNT(*) AS total_events
FROM TUMBLE(user_events, event_time, INTERVAL '1' MINUTE)
GROUP BY window_start, window_end
EMIT ON WINDOW CLOSE;
