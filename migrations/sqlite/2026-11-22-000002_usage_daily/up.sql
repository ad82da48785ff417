-- Daily request counts per API key and per authorization, kept for 90 days.
CREATE TABLE usage_daily (
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (kind, subject_id, day)
);
CREATE INDEX usage_daily_day ON usage_daily(day);
