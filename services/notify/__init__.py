"""Outbound notifications: an outbox written with the event, drained by a delivery job.

Modules: `config` (where messages go: webhooks, SMTP, the log), `outbox` (queue rows in the
caller's transaction, deduplicated by key; the delivery log), `webhook` (HMAC-signed POSTs),
`mail` (SMTP), `deliver` (the job: send what is due, back off exponentially on failure).
"""
