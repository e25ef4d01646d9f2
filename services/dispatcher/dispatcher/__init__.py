"""TaskQueue webhook dispatcher.

Reads the task event stream as a consumer group, records one WebhookDelivery per subscribed
task event (Postgres), and sends due deliveries on a thread pool: signed (the reference's
HMAC header and Standard Webhooks), retried with backoff, every attempt recorded. See
`__main__` for how the pieces run together.
"""
